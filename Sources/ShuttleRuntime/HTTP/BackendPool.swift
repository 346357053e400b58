import NIOCore
import ShuttleModel

/// Idle keep-alive connections to backends, per event loop (so taking one
/// needs no lock) and per backend id (a replaced backend's connections are
/// never reused for its successor). Bounded per backend; an idle
/// connection is closed after a while, and one the backend closed is
/// dropped rather than used.
final class BackendPool: @unchecked Sendable {  // each pool is used on its own event loop only
    /// Idle connections kept per backend.
    static let maximumIdle = 32
    /// An idle connection is closed after this long.
    static let idleTimeout = TimeAmount.seconds(60)

    let loop: any EventLoop
    private var idle: [BackendID: [BackendConnection]] = [:]

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// An idle connection to `backend` that is still open, if any.
    func take(_ backend: BackendID) -> BackendConnection? {
        while let connection = idle[backend]?.popLast() {
            connection.idleTimer?.cancel()
            connection.idleTimer = nil
            if connection.isUsable { return connection }
            connection.close()
        }
        return nil
    }

    /// Keeps a connection for the next request to its backend.
    func put(_ connection: BackendConnection) {
        connection.delegate = nil
        connection.canRead = nil
        guard connection.isUsable else {
            connection.close()
            return
        }
        var list = idle[connection.backend, default: []]
        list.removeAll { !$0.isUsable }
        guard list.count < Self.maximumIdle else {
            connection.close()
            return
        }
        let backend = connection.backend
        connection.idleTimer = loop.scheduleTask(in: Self.idleTimeout) { [weak self, weak connection] in
            guard let self, let connection else { return }
            self.idle[backend]?.removeAll { $0 === connection }
            connection.close()
        }
        list.append(connection)
        idle[backend] = list
        // It reads on while idle, so that a close by the backend is seen.
        connection.resumeReading()
    }

    /// Closes every idle connection (at shutdown).
    func closeAll() {
        for list in idle.values { for connection in list { connection.close() } }
        idle.removeAll()
    }
}
