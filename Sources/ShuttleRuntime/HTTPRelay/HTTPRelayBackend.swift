#if os(Linux)
import CShuttleSplice
import Glibc
import ShuttleModel

/// A connection to a backend on a relay loop, for one request at a time:
/// connecting, carrying its client's exchange (`owner`), or idle in the
/// loop's pool. Its events go to its owner; an idle one that becomes
/// readable was closed by the backend (or sent what no request asked for)
/// and leaves the pool.
final class HTTPRelayBackend: SpliceSource, @unchecked Sendable {  // confined to its loop's thread
    let fd: Int32
    let target: BackendTarget
    /// The loop holds what it relays, and outlives it.
    unowned(unsafe) let loop: SpliceLoop
    let inbox: ByteQueue
    let outbox: ByteQueue
    /// The client connection it works for; nil while idle.
    unowned(unsafe) var owner: HTTPRelayConnection?
    private(set) var connecting = true
    var readable = false
    /// Its end was signalled (RDHUP): a short read no longer means that
    /// nothing more is to be read, as the end is still to be read.
    var hangup = false
    var writable = false
    /// It sent its end (or failed).
    var ended = false
    /// Why it ended, when it failed.
    var error: String?
    var closed = false
    /// When it went idle in the pool.
    var idleSince: UInt64 = 0
    var connectStarted: UInt64 = 0
    var connectDeadline: UInt64 = 0

    static let tag: UInt64 = 2
    static let events = UInt32(CSHUTTLE_EPOLLIN | CSHUTTLE_EPOLLOUT | CSHUTTLE_EPOLLRDHUP) | CSHUTTLE_EPOLLET

    private init(fd: Int32, target: BackendTarget, loop: SpliceLoop, pool: BlockPool) {
        self.fd = fd
        self.target = target
        self.loop = loop
        inbox = ByteQueue(pool: pool)
        outbox = ByteQueue(pool: pool)
    }

    /// Starts a non-blocking connect to `address` for `owner`: the backend,
    /// or why not.
    static func connect(
        to address: SpliceAddress, target: BackendTarget, owner: HTTPRelayConnection, loop: SpliceLoop, pool: BlockPool
    ) -> Result<HTTPRelayBackend, RelayFailure> {
        let fd = cshuttle_tcp_socket(address.family)
        guard fd >= 0 else { return .failure(RelayFailure(describeErrno("socket", errno))) }
        SpliceConnection.setNoDelay(fd)
        let backend = HTTPRelayBackend(fd: fd, target: target, loop: loop, pool: pool)
        backend.owner = owner
        backend.connectStarted = loop.now
        backend.connectDeadline = loop.now + SpliceConnection.connectTimeout(of: target)
        let status = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        let failure = status == 0 ? 0 : errno
        if status != 0 && failure != EINPROGRESS {
            Glibc.close(fd)
            return .failure(RelayFailure(describeErrno("connect", failure)))
        }
        guard loop.register(fd, events: events, source: backend, tag: tag) else {
            let failure = errno
            Glibc.close(fd)
            return .failure(RelayFailure(describeErrno("epoll_ctl", failure)))
        }
        if status == 0 {
            backend.connecting = false
            backend.writable = true
        }
        return .success(backend)
    }

    override func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {
        guard !closed else { return }
        let error = events & UInt32(CSHUTTLE_EPOLLERR) != 0
        let hangup = events & UInt32(CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP) != 0
        if events & UInt32(CSHUTTLE_EPOLLIN | CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0 {
            readable = true
        }
        if hangup || error { self.hangup = true }
        if events & UInt32(CSHUTTLE_EPOLLOUT | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0 { writable = true }
        if connecting {
            guard writable || error else { return }
            let failure = error || (hangup && events & UInt32(CSHUTTLE_EPOLLOUT) == 0) ? SpliceConnection.socketError(fd) : 0
            if error || failure != 0 {
                owner?.backendConnectFailed(self, reason: describeErrno("connect", failure == 0 ? ECONNREFUSED : failure))
                return
            }
            connecting = false
            owner?.backendConnected(self)
            return
        }
        guard let owner else {
            // Idle: the backend closed it, or spoke out of turn. An edge for
            // bytes already taken, or for room to write, says neither.
            if hangup || error || (events & UInt32(CSHUTTLE_EPOLLIN) != 0 && !isQuiet) {
                loop.httpState.pool.drop(self)
            }
            return
        }
        owner.pump()
    }

    /// Nothing to read and no end: a look (MSG_PEEK) finds EAGAIN.
    var isQuiet: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) < 0 && errno == EAGAIN
    }

    /// Whether the connect is past its deadline at `now`.
    func connectTimedOut(_ now: UInt64) -> Bool {
        connecting && now >= connectDeadline
    }

    /// Closes the socket; the object lives until the loop's batch of
    /// events is handled (one of them may still name it).
    func close() {
        guard !closed else { return }
        closed = true
        owner = nil
        inbox.clear()
        outbox.clear()
        Glibc.close(fd)
        loop.retire(self)
    }
}

/// Why a relay step failed, for the logs and the access log.
struct RelayFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A relay loop's idle backend connections, per backend, newest last.
/// The lists are objects of their own: a dictionary's value mutated in
/// place copied the array (and allocated) on every take and put.
final class HTTPRelayPool {
    private final class Idle {
        @exclusivity(unchecked) var connections: [HTTPRelayBackend] = []
        /// The backend left the config then (loop time): a connection in
        /// use at the time is closed when it comes back. Forgotten after
        /// `idleTimeout`.
        var retiredAt: UInt64?
        /// When a connection last came back: a list empty since longer than
        /// `idleTimeout` is forgotten, one in use is kept between sweeps.
        var lastPut: UInt64 = 0
    }

    @exclusivity(unchecked) private var idle: [BackendID: Idle] = [:]

    /// A connection idle no longer than this is reused, as on the NIO path.
    static let idleTimeout = UInt64(BackendPool.idleTimeout.nanoseconds)

    func take(_ backend: BackendID) -> HTTPRelayBackend? {
        idle[backend]?.connections.popLast()
    }

    /// Keeps a connection that finished a request and its answer cleanly.
    func put(_ connection: HTTPRelayBackend, now: UInt64) {
        connection.owner = nil
        connection.idleSince = now
        let list: Idle
        if let existing = idle[connection.target.id] {
            list = existing
        } else {
            list = Idle()
            idle[connection.target.id] = list
        }
        list.lastPut = now
        guard list.retiredAt == nil, list.connections.count < BackendPool.maximumIdle else {
            connection.close()
            return
        }
        list.connections.append(connection)
    }

    /// An idle connection that can no longer be used.
    func drop(_ connection: HTTPRelayBackend) {
        connection.close()
        idle[connection.target.id]?.connections.removeAll { $0 === connection }
    }

    /// Closes the idle connections to a backend that left the config.
    /// Those in use then are closed when they come back.
    func retire(_ backend: BackendID, now: UInt64) {
        let list = idle[backend] ?? Idle()
        idle[backend] = list
        list.retiredAt = now
        for connection in list.connections { connection.close() }
        list.connections = []
    }

    /// Closes the connections idle past `idleTimeout`.
    /// Forgets a retired backend's marker after `idleTimeout`, and a
    /// backend none of whose connections came back for as long. (Run at
    /// every tick: a list emptied by a busy backend is kept, not made again.)
    func sweep(_ now: UInt64) {
        var forgotten: [BackendID] = []
        for (backend, list) in idle {
            list.connections.removeAll { connection in
                guard now - connection.idleSince >= Self.idleTimeout else { return false }
                connection.close()
                return true
            }
            let since = list.retiredAt ?? list.lastPut
            if list.connections.isEmpty && now - since >= Self.idleTimeout { forgotten.append(backend) }
        }
        // Removed after the walk: removing during it copies the dictionary.
        for backend in forgotten { idle[backend] = nil }
    }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.connections.count } }

    /// Backends with a list or a retirement marker, for tests.
    var knownBackends: Int { idle.count }

    func closeAll() {
        for list in idle.values { for connection in list.connections { connection.close() } }
        idle = [:]
    }
}
#endif
