#if os(Linux)
import CShuttleSplice
import Glibc
import Logging
import NIOCore
import ShuttleModel
import Synchronization

/// A TCP service's listening socket on the splice relay. One socket, in
/// every relay loop's epoll set with EPOLLEXCLUSIVE, so that a new client
/// wakes one loop, which accepts it and relays it. (A socket per loop in a
/// `ListeningGroup`, as the HTTP listeners have, measured no better here.)
final class SpliceListener: SpliceSource, AcceptingSource, @unchecked Sendable {  // immutable but for the atomics
    let id: ListenerID
    let fd: Int32
    let driver: Driver
    let relay: SpliceRelay
    /// Where it listens, `ip:port`.
    let address: String
    private let closing = Atomic<Bool>(false)
    private let loopsLeft: Atomic<Int>

    /// How many clients one wake-up accepts before letting the loop go on.
    static let acceptsPerWakeup = 64
    static let backlog: Int32 = 1024
    /// Level-triggered: a loop that leaves clients in the queue is told again.
    static let events = UInt32(CSHUTTLE_EPOLLIN | CSHUTTLE_EPOLLEXCLUSIVE)
    static let tag: UInt64 = 3

    var isClosing: Bool { closing.load(ordering: .relaxed) }
    var acceptEvents: UInt32 { Self.events }
    var acceptTag: UInt64 { Self.tag }

    private init(id: ListenerID, fd: Int32, driver: Driver, relay: SpliceRelay, address: String) {
        self.id = id
        self.fd = fd
        self.driver = driver
        self.relay = relay
        self.address = address
        loopsLeft = Atomic(relay.loops.count)
    }

    /// Binds and listens (on the caller's thread: a few system calls, and a
    /// blocking resolution for a listen address that is a host name).
    static func bind(_ listener: Listener, driver: Driver, relay: SpliceRelay) throws -> SpliceListener {
        let address = try SpliceAddress.listening(on: listener)
        // One plain socket (TCP_NODELAY for the accepted ones to inherit).
        let fd = try ListeningGroup.bind(address, sockets: 1, backlog: backlog)[0]
        let bound = SpliceAddress.local(of: fd)?.description ?? listener.address
        let spliceListener = SpliceListener(id: listener.id, fd: fd, driver: driver, relay: relay, address: bound)
        for loop in relay.loops {
            guard loop.register(fd, events: events, source: spliceListener, tag: tag)
            else {
                let failure = errno
                for other in relay.loops { _ = cshuttle_epoll_remove(other.epoll, fd) }
                Glibc.close(fd)
                throw SpliceError.system(describeErrno("epoll_ctl", failure))
            }
        }
        return spliceListener
    }

    override func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {
        acceptClients(on: loop, limit: Self.acceptsPerWakeup, logger: driver.logger, address: address) { client, peer in
            SpliceConnection.start(client: client, peer: peer, listener: id, loop: loop, driver: driver)
        }
    }

    /// Stops accepting at once (the port can be bound again), and closes the
    /// socket once no loop can be handling an event of it.
    func close(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        guard !closing.exchange(true, ordering: .relaxed) else {
            promise.succeed()
            return promise.futureResult
        }
        for loop in relay.loops { _ = cshuttle_epoll_remove(loop.epoll, fd) }
        _ = shutdown(fd, Int32(SHUT_RDWR))
        for loop in relay.loops {
            // Tasks run after the batch they were posted in: any event of
            // this socket still in a batch is handled by then.
            loop.post { [self] in
                if loopsLeft.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                    Glibc.close(fd)
                    promise.succeed()
                }
            }
        }
        return promise.futureResult
    }
}
#endif
