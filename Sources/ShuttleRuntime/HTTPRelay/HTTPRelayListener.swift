#if os(Linux)
import CShuttleSplice
import CoreMetrics
import Glibc
import NIOCore
import ShuttleModel
import Synchronization

/// A virtual-host listener on the relay's epoll loops (`-http-relay
/// epoll`): plain HTTP, or HTTPS with the system's OpenSSL. A socket per
/// loop in one `ListeningGroup`, each in its own loop's epoll set, so that
/// a client is accepted and served on the loop the kernel gave it to.
final class HTTPRelayListener: @unchecked Sendable {  // immutable but for the atomics
    let sockets: [(loop: SpliceLoop, source: Acceptor)]
    let address: SpliceAddress?
    private let closing = Atomic<Bool>(false)
    private let socketsOpen: Atomic<Int>

    static let backlog: Int32 = 1024
    /// Level-triggered: a loop that leaves clients in the queue is told again.
    static let events = UInt32(CSHUTTLE_EPOLLIN)
    static let tag: UInt64 = 3
    static let acceptsPerWakeup = 64

    /// One loop's socket.
    final class Acceptor: SpliceSource, AcceptingSource, @unchecked Sendable {  // immutable but for the atomic
        let fd: Int32
        let frontend: HTTPFrontend
        /// Where an HTTPS listener's certificates come from; nil for plain HTTP.
        let certificates: CertificateStore?
        let closing = Atomic<Bool>(false)

        init(fd: Int32, frontend: HTTPFrontend, certificates: CertificateStore?) {
            self.fd = fd
            self.frontend = frontend
            self.certificates = certificates
        }

        var isClosing: Bool { closing.load(ordering: .relaxed) }
        var acceptEvents: UInt32 { HTTPRelayListener.events }
        var acceptTag: UInt64 { HTTPRelayListener.tag }

        override func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {
            // An HTTPS listener is bound once its certificates are loaded, and
            // they are never unloaded; without them a client gets no plain HTTP.
            let served = certificates?.relayServed
            acceptClients(
                on: loop, limit: HTTPRelayListener.acceptsPerWakeup, logger: frontend.driver.logger,
                address: certificates == nil ? "-http" : "-https"
            ) { client, peer in
                guard certificates == nil || served != nil else {
                    Glibc.close(client)
                    return
                }
                HTTPRelayConnection.start(
                    client: client, peer: peer, certificates: served, loop: loop, frontend: frontend)
            }
        }
    }

    private init(sockets: [(loop: SpliceLoop, source: Acceptor)], address: SpliceAddress?) {
        self.sockets = sockets
        self.address = address
        socketsOpen = Atomic(sockets.count)
    }

    /// Binds `address` with a socket for each of `relay`'s loops; with
    /// `certificates`, clients speak TLS.
    static func bind(
        _ address: String, frontend: HTTPFrontend, relay: SpliceRelay, certificates: CertificateStore? = nil
    ) throws -> HTTPRelayListener {
        let local = try SpliceAddress.listening(on: address, network: .tcp)
        let fds = try ListeningGroup.bind(local, sockets: relay.loops.count, backlog: backlog)
        var sockets: [(loop: SpliceLoop, source: Acceptor)] = []
        for (loop, fd) in zip(relay.loops, fds) {
            let acceptor = Acceptor(fd: fd, frontend: frontend, certificates: certificates)
            guard loop.register(fd, events: events, source: acceptor, tag: tag) else {
                let failure = errno
                for (other, registered) in sockets { _ = cshuttle_epoll_remove(other.epoll, registered.fd) }
                for fd in fds { Glibc.close(fd) }
                throw SpliceError.system(describeErrno("epoll_ctl", failure))
            }
            sockets.append((loop, acceptor))
        }
        return HTTPRelayListener(sockets: sockets, address: SpliceAddress.local(of: fds[0]))
    }

    /// Where it listens, as NIO says it.
    var localAddress: SocketAddress? {
        guard let address else { return nil }
        return try? SocketAddress(ipAddress: address.ipString, port: address.port)
    }

    /// Stops accepting; each socket closes once its loop can have no
    /// event of it left.
    func close(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        guard !closing.exchange(true, ordering: .relaxed) else {
            promise.succeed()
            return promise.futureResult
        }
        for (loop, acceptor) in sockets {
            acceptor.closing.store(true, ordering: .relaxed)
            _ = cshuttle_epoll_remove(loop.epoll, acceptor.fd)
            _ = shutdown(acceptor.fd, Int32(SHUT_RDWR))
            loop.post { [self] in
                Glibc.close(acceptor.fd)
                if socketsOpen.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 { promise.succeed() }
            }
        }
        return promise.futureResult
    }
}

/// What a relay loop keeps for the HTTP connections it serves.
final class HTTPRelayLoopState {
    let pool = HTTPRelayPool()
    let blocks = BlockPool()
    // Unchecked for overlapping access at run time: see `SpliceLoop.reports`.
    /// Request ids need to be unlikely to repeat, not secret.
    @exclusivity(unchecked) var requestIDs: SeededGenerator
    /// Each service's request timer, looked up once.
    @exclusivity(unchecked) var requestTimers = BoundedCache<String, CoreMetrics.Timer>()
    /// Where an answer's head is written before it is queued (its room kept).
    @exclusivity(unchecked) var scratch: [UInt8] = []

    init() {
        var system = SystemRandomNumberGenerator()
        requestIDs = SeededGenerator(seed: system.next())
    }

    func tick(_ now: UInt64) {
        pool.sweep(now)
    }

    func close() {
        pool.closeAll()
        blocks.freeAll()
    }
}
#endif
