#if os(Linux)
import CShuttleSplice
import Glibc
import Logging
import ShuttleModel

/// One client of a TCP service on the splice relay, and its backend: placed
/// by the model (with failover on connect errors, as the model decides),
/// then relayed with splice(2) in both directions. The same contract with
/// the model as `TCPProxyConnection`: `.backendConnected` or
/// `.backendConnectFailed` per attempt, byte counts at most once a second
/// and at the end, `.connectionClosed` once.
final class SpliceConnection: RelayConnection, PlacedClient, @unchecked Sendable {  // confined to its loop's thread
    let id: ConnectionID
    let driver: Driver
    /// Unowned and unchecked: the loop holds every connection it relays and
    /// is the only one to call it, on its thread, so the loop is there
    /// whenever a connection runs. (A checked `unowned` cost an atomic
    /// increment and decrement per use, 1% of a short connection's CPU.)
    unowned(unsafe) let loop: SpliceLoop
    let client: Int32
    private var backend: Int32 = -1

    private enum State {
        /// Waiting for the model or for a host name to resolve.
        case placing
        case connecting
        case relaying
        case closed
    }

    private var state = State.placing
    private var target: BackendTarget?
    private var connectStarted: UInt64 = 0
    private var connectDeadline: UInt64 = 0
    /// Client to backend (`sent`) and backend to client (`received`).
    private var up = SpliceDirection()
    private var down = SpliceDirection()
    /// Readiness seen on the client before there was a backend.
    private var clientReadable = false
    private var clientWritable = false
    private var clientHangup = false
    /// The client reset while its backend was being connected.
    private var clientGone = false
    private var reported = (sent: 0, received: 0)
    private var lastReport: UInt64 = 0

    static let clientTag: UInt64 = 1
    static let backendTag: UInt64 = 2
    static let events = UInt32(CSHUTTLE_EPOLLIN | CSHUTTLE_EPOLLOUT | CSHUTTLE_EPOLLRDHUP) | CSHUTTLE_EPOLLET
    /// ClientBootstrap's default, which the NIO path keeps when the service
    /// sets no connect timeout.
    static let defaultConnectTimeout: UInt64 = 10_000_000_000
    static let reportInterval: UInt64 = 1_000_000_000

    private init(id: ConnectionID, client: Int32, loop: SpliceLoop, driver: Driver) {
        self.id = id
        self.client = client
        self.loop = loop
        self.driver = driver
    }

    /// A client just accepted on `loop`'s thread.
    static func start(client: Int32, peer: SpliceAddress, listener: ListenerID, loop: SpliceLoop, driver: Driver) {
        let connection = SpliceConnection(id: driver.makeConnectionID(), client: client, loop: loop, driver: driver)
        loop.add(connection)
        guard loop.register(client, events: events, source: connection, tag: clientTag) else {
            connection.finish()
            return
        }
        switch driver.place(connection.id, listener: listener, key: BalanceKey(peer.ipString)) {
        case .connect(let target): connection.connect(target)
        case .close(let reason): connection.closeWithoutBackend(reason)
        }
    }

    /// TCP_NODELAY on a backend socket (the HTTP relay's too).
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: Placing and connecting

    func closeWithoutBackend(_ reason: CloseReason) {
        driver.logClosedWithoutBackend(client: SpliceAddress.peer(of: client)?.description ?? "?", reason: reason)
        finish()
    }

    func connect(_ target: BackendTarget) {
        guard state != .closed else { return }
        self.target = target
        state = .placing
        connectStarted = cshuttle_now()
        let timeout = Self.connectTimeout(of: target)
        connectDeadline = connectStarted + timeout
        let attempt = connectStarted
        // A host name resolves while the connect deadline runs.
        let location = loop.locate(target) { [self] result in
            // A later attempt, a timeout or the client's end came first.
            guard state == .placing, connectStarted == attempt else { return }
            switch result {
            case .success(let address): connect(to: address)
            case .failure(let error): connectFailed(error.description)
            }
        }
        switch location {
        case .known(let address): connect(to: address)
        case .resolving: break
        case .unusable(let reason): connectFailed(reason)
        }
    }

    private func connect(to address: SpliceAddress) {
        let fd = cshuttle_tcp_socket(address.family)
        guard fd >= 0 else {
            connectFailed(describeErrno("socket", errno))
            return
        }
        Self.setNoDelay(fd)
        backend = fd
        state = .connecting
        let status = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        let failure = status == 0 ? 0 : errno
        if status != 0 && failure != EINPROGRESS {
            connectFailed(describeErrno("connect", failure))
            return
        }
        guard loop.register(fd, events: Self.events, source: self, tag: Self.backendTag) else {
            connectFailed(describeErrno("epoll_ctl", errno))
            return
        }
        if status == 0 { connected(backendReadable: false, backendHangup: false) }
    }

    /// `backendReadable`: what the event that told of the connect said
    /// (edge-triggered: it will not be said again).
    private func connected(backendReadable: Bool, backendHangup: Bool) {
        guard let target else { return }
        state = .relaying
        let now = loop.now
        loop.recordConnect(target, nanoseconds: Int64(cshuttle_now() - connectStarted), metrics: driver.metrics)
        loop.report(.backendConnected(id), to: driver)
        if clientGone {
            finish()
            return
        }
        up = SpliceDirection(source: client, sink: backend, now: now)
        down = SpliceDirection(source: backend, sink: client, now: now)
        up.sourceReadable = clientReadable
        up.sourceHangup = clientHangup
        down.sinkWritable = clientWritable
        up.sinkWritable = true
        down.sourceReadable = backendReadable
        down.sourceHangup = backendHangup
        lastReport = now
        pump()
    }

    private func connectFailed(_ reason: String) {
        if backend >= 0 {
            close(backend)
            backend = -1
        }
        state = .placing
        if let target { driver.logConnectFailure(to: target, reason: reason) }
        let actions = driver.send(.backendConnectFailed(id, reason: reason))
        if clientGone {
            finish()
        } else {
            carryOut(actions)
        }
    }

    // MARK: Events

    override func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {
        let readable = events & UInt32(CSHUTTLE_EPOLLIN | CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0
        let writable = events & UInt32(CSHUTTLE_EPOLLOUT | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0
        let error = events & UInt32(CSHUTTLE_EPOLLERR) != 0
        switch state {
        case .closed:
            return
        case .placing, .connecting:
            if tag == Self.clientTag {
                // A client reset while its backend is being connected is
                // gone (the attempt still ends and is told to the model, as
                // on the NIO path); one that merely half-closed keeps its
                // bytes in the kernel until the backend is there.
                if error {
                    clientGone = true
                    if target == nil { finish() }
                    return
                }
                clientReadable = clientReadable || readable
                clientWritable = clientWritable || writable
                clientHangup = clientHangup || events & UInt32(CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP) != 0
            } else if state == .connecting && (writable || error) {
                // A failed connect says EPOLLERR; only then is SO_ERROR worth a system call.
                let failed = error || events & UInt32(CSHUTTLE_EPOLLHUP) != 0
                let failure = failed ? Self.socketError(backend) : 0
                if !failed {
                    connected(
                        backendReadable: readable,
                        backendHangup: events & UInt32(CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP) != 0)
                } else {
                    connectFailed(describeErrno("connect", failure == 0 ? ECONNREFUSED : failure))
                }
            }
        case .relaying:
            if error, Self.socketError(tag == Self.clientTag ? client : backend) != 0 {
                finish()
                return
            }
            let hangup = events & UInt32(CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0
            if tag == Self.clientTag {
                if readable { up.sourceReadable = true }
                if hangup { up.sourceHangup = true }
                if writable { down.sinkWritable = true }
            } else {
                if readable { down.sourceReadable = true }
                if hangup { down.sourceHangup = true }
                if writable { up.sinkWritable = true }
            }
            pump()
        }
    }

    /// The service's connect timeout in nanoseconds, or the default.
    static func connectTimeout(of target: BackendTarget) -> UInt64 {
        target.connectTimeout > 0 ? UInt64(target.connectTimeout) * 1_000_000 : defaultConnectTimeout
    }

    /// A socket's pending error (SO_ERROR), the HTTP relay's too.
    static func socketError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value
    }

    /// Moves bytes both ways; ends the connection when both directions are
    /// done or either fails.
    override func pump() {
        guard state == .relaying else { return }
        let upward = up.move(pipes: loop.pipes, scratch: loop.scratch, now: loop.now, last: down.done)
        let downward = down.move(pipes: loop.pipes, scratch: loop.scratch, now: loop.now, last: up.done)
        var more = false
        switch (upward, downward) {
        case (.failed, _), (_, .failed):
            finish()
            return
        case (.turnOver, _), (_, .turnOver):
            more = true
        case (.waiting, .waiting):
            break
        }
        if up.done && down.done {
            finish()
        } else if more {
            loop.pumpAgain(self)
        }
    }

    // MARK: Time

    /// Connect and inactivity timeouts, and byte counts due to the model.
    override func tick(_ now: UInt64) {
        switch state {
        case .closed:
            return
        case .placing, .connecting:
            guard target != nil, now >= connectDeadline else { return }
            let waited = (connectDeadline - connectStarted) / 1_000_000
            connectFailed("connect timed out after \(waited) ms")
        case .relaying:
            guard let target else { return }
            if target.clientTimeout > 0,
                now - max(up.lastRead, down.lastWrite) >= UInt64(target.clientTimeout) * 1_000_000
            {
                finish()
                return
            }
            if target.serverTimeout > 0,
                now - max(down.lastRead, up.lastWrite) >= UInt64(target.serverTimeout) * 1_000_000
            {
                finish()
                return
            }
            if now - lastReport >= Self.reportInterval {
                lastReport = now
                reportBytes()
            }
        }
    }

    private func reportBytes() {
        let sent = up.bytes - reported.sent
        let received = down.bytes - reported.received
        guard sent > 0 || received > 0 else { return }
        reported = (up.bytes, down.bytes)
        loop.report(.bytesTransferred(id, sent: sent, received: received), to: driver)
    }

    // MARK: The end

    /// Closes both sockets and tells the model, once.
    private func finish() {
        guard state != .closed else { return }
        let wasRelaying = state == .relaying
        state = .closed
        up.release(to: loop.pipes)
        down.release(to: loop.pipes)
        // Closing a socket also takes it out of the epoll set.
        close(client)
        if backend >= 0 { close(backend) }
        backend = -1
        loop.remove(self)
        // The last bytes with the end, in one report.
        let sent = wasRelaying ? up.bytes - reported.sent : 0
        let received = wasRelaying ? down.bytes - reported.received : 0
        loop.report(.connectionEnded(id, sent: sent, received: received), to: driver)
    }

    /// The relay is stopping.
    override func abort() {
        finish()
    }
}

#endif
