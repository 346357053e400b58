import NIOCore
import ShuttleModel

/// Idle keep-alive connections to backends, per event loop (so taking one
/// needs no lock) and per backend id (a replaced backend's connections are
/// never reused for its successor). Bounded per backend; an idle
/// connection is closed after a while, and one the backend closed is
/// dropped rather than used.
final class BackendPool: @unchecked Sendable {  // each pool is used on its own event loop only
    /// Idle connections kept per backend (per loop). Above the clients a
    /// loop serves at once, or every burst past it opens connections anew
    /// and closes them on return: at 32, 64 clients closing after each
    /// request made 1% of requests connect; at 128, only the backend's own
    /// keep-alive limit does. Idle ones still close after `idleTimeout`.
    static let maximumIdle = 128
    /// An idle connection is closed after this long (and at most a quarter
    /// of it more: idle connections are swept, not timed one by one, so
    /// that taking and returning one costs no timer).
    static let idleTimeout = TimeAmount.seconds(60)

    let loop: any EventLoop
    /// Per backend, in a class of its own: taking and returning a connection
    /// change the list in place through a plain lookup (a dictionary's
    /// in-place access to a value costs an allocation per call).
    private var idle: [BackendID: IdleList] = [:]
    private var sweeper: RepeatedTask?

    private final class IdleList {
        var connections: [BackendConnection] = []
        /// The backend left the config then: a connection in use at the
        /// time is closed when it comes back. Forgotten after `idleTimeout`.
        var retiredAt: NIODeadline?
    }

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// An idle connection to `backend` that is still open, if any.
    func take(_ backend: BackendID) -> BackendConnection? {
        guard let list = idle[backend] else { return nil }
        while let connection = list.connections.popLast() {
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
        let list: IdleList
        if let known = idle[connection.backend] {
            list = known
        } else {
            list = IdleList()
            idle[connection.backend] = list
        }
        if list.retiredAt != nil {
            connection.close()
            return
        }
        if list.connections.count >= Self.maximumIdle {
            list.connections.removeAll { !$0.isUsable }
            guard list.connections.count < Self.maximumIdle else {
                connection.close()
                return
            }
        }
        connection.idleSince = .now()
        list.connections.append(connection)
        startSweeping()
        // It reads on while idle, so that a close by the backend is seen.
        connection.resumeReading()
    }

    private func startSweeping() {
        guard sweeper == nil else { return }
        let interval = TimeAmount.nanoseconds(Self.idleTimeout.nanoseconds / 4)
        sweeper = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.sweep()
        }
    }

    /// Closes the idle connections to a backend that left the config.
    /// Those in use then are closed when they come back.
    func retire(_ backend: BackendID, now: NIODeadline = .now()) {
        let list = idle[backend] ?? IdleList()
        idle[backend] = list
        list.retiredAt = now
        let closing = list.connections
        list.connections = []
        for connection in closing { connection.close() }
        startSweeping()
    }

    /// Closes the connections idle for `idleTimeout` at `now`, or closed by
    /// their backend; forgets backends left with none.
    func sweep(now: NIODeadline = .now()) {
        var forgotten: [BackendID] = []
        for (backend, list) in idle {
            var expired: [BackendConnection] = []
            list.connections.removeAll { connection in
                guard !connection.isUsable || now - connection.idleSince >= Self.idleTimeout else { return false }
                expired.append(connection)
                return true
            }
            if let retiredAt = list.retiredAt {
                if now - retiredAt >= Self.idleTimeout { forgotten.append(backend) }
            } else if list.connections.isEmpty {
                forgotten.append(backend)
            }
            for connection in expired { connection.close() }
        }
        // Removed after the walk: removing during it copies the dictionary.
        for backend in forgotten { idle[backend] = nil }
        if idle.isEmpty {
            sweeper?.cancel()
            sweeper = nil
        }
    }

    /// Idle connections kept now, for tests.
    var idleCount: Int { idle.values.reduce(0) { $0 + $1.connections.count } }

    /// Closes every idle connection (at shutdown).
    func closeAll() {
        sweeper?.cancel()
        sweeper = nil
        let all = idle.values.flatMap(\.connections)
        idle.removeAll()
        for connection in all { connection.close() }
    }
}
