#if os(Linux)
import CShuttleSplice
import CoreMetrics
import Dispatch
import Glibc
import Logging
import NIOConcurrencyHelpers
import ShuttleModel

/// Something registered in a relay loop's epoll set: a listening socket or
/// a connection. The event's data is the object's address (unretained; the
/// loop keeps it alive) with a small tag in the low bits saying which of its
/// file descriptors is ready.
class SpliceSource: @unchecked Sendable {  // each subclass says how it is confined
    func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {}
}

/// A listening socket in a relay loop's epoll set (level-triggered), which
/// the loop stops watching for a second when no descriptor is left to accept
/// with (`SpliceLoop.pauseAccepting`).
protocol AcceptingSource: SpliceSource {
    var fd: Int32 { get }
    var isClosing: Bool { get }
    var acceptEvents: UInt32 { get }
    var acceptTag: UInt64 { get }
}

extension AcceptingSource {
    /// Accepts up to `limit` waiting clients and hands each to `start`.
    /// Out of descriptors, the loop stops watching the socket for a second:
    /// level-triggered, it would wake the loop again at once, and for ever.
    func acceptClients(
        on loop: SpliceLoop, limit: Int, logger: Logger, address: String, start: (Int32, SpliceAddress) -> Void
    ) {
        for _ in 0..<limit {
            var peer = SpliceAddress()
            peer.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &peer.storage) { cshuttle_accept(fd, $0, &peer.length) }
            if client >= 0 {
                start(client, peer)
                continue
            }
            switch errno {
            case EAGAIN, EINVAL:  // no more clients; or closed meanwhile
                return
            case ECONNABORTED, EPROTO, EPERM:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                logger.error(
                    "accept failed, pausing this listener for a second",
                    metadata: ["address": "\(address)", "error": "\(describeErrno("accept4", errno))"])
                loop.pauseAccepting(self)
                return
            default:
                logger.error("accept failed", metadata: ["address": "\(address)", "error": "\(describeErrno("accept4", errno))"])
                return
            }
        }
    }
}

/// A client connection a relay loop holds: a TCP service's (`SpliceConnection`)
/// or a virtual-host listener's (`HTTPRelayConnection`).
class RelayConnection: SpliceSource, @unchecked Sendable {  // confined to its loop's thread
    /// Index in the loop's list of connections.
    var slot = -1
    /// Moves what can be moved; called again after the batch of events
    /// when it asked to be (`SpliceLoop.pumpAgain`).
    func pump() {}
    /// Timeouts, and reports due, at the loop's tick.
    func tick(_ now: UInt64) {}
    /// The relay is stopping: close at once.
    func abort() {}
}

/// One relay thread: an edge-triggered epoll loop over the connections it
/// accepted, with its own pipe pool, a coarse clock for the timeouts and the
/// byte reports, and a queue of tasks other threads hand it.
final class SpliceLoop: @unchecked Sendable {  // all but `post` runs on the loop's thread
    let epoll: Int32
    private let wake: Int32
    private let tasks = NIOLockedValueBox(TaskQueue())
    /// The monotonic clock in nanoseconds, read once per wake-up.
    private(set) var now: UInt64 = cshuttle_now()
    let pipes = PipePool()
    /// Where a direction copies a short message (see `SpliceDirection`):
    /// 8 KiB, what the smallest pipe the system gives (two pages, past the
    /// user's pipe quota) still takes whole when a sink leaves some behind.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 * 1024, alignment: 64)
    /// Backend addresses that are IP literals, parsed once.
    private var addresses = BoundedCache<String, SpliceAddress>()
    /// Each backend's connect-time timer, looked up once.
    private var connectTimers = BoundedCache<BackendID, CoreMetrics.Timer>()
    private var connections: [RelayConnection] = []
    /// The UDP services this loop reads (`-udp-relay epoll`).
    private var services: [DatagramService] = []
    /// Where UDP services' datagrams are read; made for the first one.
    private(set) lazy var datagrams = DatagramBatch()
    /// UDP services with replies to send when the batch of events ends.
    private var flushing: [DatagramService] = []
    /// Connections that spent their turn with bytes still to move (edge
    /// triggering will not say so again): pumped again after the batch.
    @exclusivity(unchecked) private var again: [RelayConnection] = []
    /// What the model gives no actions for (backends connected, bytes
    /// moved, requests served, connections ended), told when the batch of
    /// events ends: one taking of the model's lock per batch instead of
    /// three or four per connection, which the loops fought over (a futex
    /// call for every three connections).
    ///
    /// `@exclusivity(unchecked)`, here and on the relay's byte queues, block
    /// pool and idle pool: Swift checks at run time that two accesses to a
    /// class's property never overlap, and those checks were 7% of a
    /// keep-alive request's instructions (`bench/callgrind`). These few are
    /// private to one loop's thread, and changed only by short methods that
    /// call nothing that could reach them meanwhile; every other property
    /// keeps its check.
    @exclusivity(unchecked) private var reports: [ModelReport] = []
    private var reportsTo: Driver?
    /// Closed during this batch: kept alive until its events are handled.
    private var retired: [SpliceSource] = []
    /// Listeners this loop stopped accepting from for a while (out of
    /// descriptors), and when to take them up again.
    private var paused: [(listener: any AcceptingSource, until: UInt64)] = []
    private var running = true
    private var nextTick: UInt64 = 0
    private var httpStateIfMade: HTTPRelayLoopState?

    /// What the HTTP connections of this loop share, made on first use.
    var httpState: HTTPRelayLoopState {
        if let made = httpStateIfMade { return made }
        let made = HTTPRelayLoopState()
        httpStateIfMade = made
        return made
    }

    /// Closes the idle HTTP connections kept for a backend that left the config.
    func retireHTTPBackend(_ backend: BackendID) {
        httpStateIfMade?.pool.retire(backend, now: now)
    }

    /// How often timeouts and byte reports are looked at.
    static let tickInterval: UInt64 = 100_000_000
    static let batchSize = 256

    init() throws {
        let epoll = cshuttle_epoll_create()
        guard epoll >= 0 else { throw SpliceError.system(describeErrno("epoll_create1", errno)) }
        let wake = cshuttle_eventfd()
        guard wake >= 0 else {
            let failure = errno
            close(epoll)
            throw SpliceError.system(describeErrno("eventfd", failure))
        }
        self.epoll = epoll
        self.wake = wake
        // Data 0 is the wake-up; no object lives at address 0.
        _ = cshuttle_epoll_add(epoll, wake, UInt32(CSHUTTLE_EPOLLIN) | CSHUTTLE_EPOLLET, 0)
    }

    /// Runs the loop on a thread of its own, named `name` (the first 15
    /// bytes show in ps and perf). The thread holds the loop until `run`
    /// returns.
    func start(name: String) {
        let context = Unmanaged.passRetained(StartContext(loop: self, name: name)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let context = Unmanaged<StartContext>.fromOpaque(raw!).takeRetainedValue()
            cshuttle_set_thread_name(context.name)
            context.loop.run()
            return nil
        }, context)
        precondition(result == 0, describeErrno("pthread_create", result))
        pthread_detach(thread)
    }

    private final class StartContext {
        let loop: SpliceLoop
        let name: String
        init(loop: SpliceLoop, name: String) {
            self.loop = loop
            self.name = name
        }
    }

    /// Tasks handed to the loop by other threads.
    private struct TaskQueue {
        var waiting: [@Sendable () -> Void] = []
        /// The loop has ended: a task runs on the thread that posts it.
        var ended = false
    }

    /// Whether the loop has ended (posted tasks run where they are posted).
    var hasEnded: Bool { tasks.withLockedValue { $0.ended } }

    /// Runs `task` on the loop's thread, after the events of the current
    /// batch; once the loop has ended, at once on the caller's thread. Every
    /// task runs: a listener's close completes its promise from the task of
    /// each loop, also when the relay stopped first (a loop that dropped the
    /// task would leave the close unfinished forever).
    func post(_ task: @escaping @Sendable () -> Void) {
        let runHere = tasks.withLockedValue { queue -> Bool in
            if queue.ended { return true }
            queue.waiting.append(task)
            if queue.waiting.count == 1 {
                // Under the lock: the loop closes `wake` only after it has
                // marked itself ended under the lock.
                var one: UInt64 = 1
                _ = write(wake, &one, 8)
            }
            return false
        }
        if runHere { task() }
    }

    /// Stops the loop: every open connection is closed (and reported closed).
    func stop() {
        post { [self] in running = false }
    }

    /// Registers `fd` of `source` for `events` (EPOLLET added by the caller).
    func register(_ fd: Int32, events: UInt32, source: SpliceSource, tag: UInt64) -> Bool {
        let data = UInt64(UInt(bitPattern: Unmanaged.passUnretained(source).toOpaque())) | tag
        return cshuttle_epoll_add(epoll, fd, events, data) == 0
    }

    func add(_ connection: RelayConnection) {
        connection.slot = connections.count
        connections.append(connection)
    }

    func remove(_ connection: RelayConnection) {
        let slot = connection.slot
        guard slot >= 0, slot < connections.count, connections[slot] === connection else { return }
        let last = connections.removeLast()
        if slot < connections.count {
            connections[slot] = last
            last.slot = slot
        }
        connection.slot = -1
        retired.append(connection)
    }

    /// Keeps `source` alive until the events of the current batch are
    /// handled (one of them may still name it).
    func retire(_ source: SpliceSource) {
        retired.append(source)
    }

    func flushAfterBatch(_ service: DatagramService) {
        flushing.append(service)
    }

    /// Takes up a UDP service: its socket is read from now on.
    func add(_ service: DatagramService) {
        // Posted as the loop ended (the relay stopping): closed, like the
        // loop's other services.
        guard !hasEnded else {
            Glibc.close(service.fd)
            return
        }
        guard service.start() else { return }
        services.append(service)
    }

    /// Lets a UDP service go; false if it was not this loop's.
    func remove(_ service: DatagramService) -> Bool {
        guard let index = services.firstIndex(where: { $0 === service }) else { return false }
        services.remove(at: index)
        retired.append(service)
        return true
    }

    /// Where a backend is, for a connection or flow of this loop.
    enum BackendLocation {
        case known(SpliceAddress)
        /// Its host name is being resolved: `resolved` will say.
        case resolving
        case unusable(String)
    }

    /// Where `target` is: at once for an IP address (parsed once, then
    /// remembered); for a host name, `.resolving`, and `resolved` runs on
    /// this loop's thread once getaddrinfo, which blocks, has answered off
    /// it. The caller tells a stale answer from a current one.
    func locate(
        _ target: BackendTarget, resolved: @escaping @Sendable (Result<SpliceAddress, SpliceAddress.ResolveError>) -> Void
    ) -> BackendLocation {
        if let known = addresses[target.address] { return .known(known) }
        guard case .success(let address) = HostPort.parse(target.address, listening: false) else {
            return .unusable("bad address \(target.address)")
        }
        let host: String
        switch address.host {
        case .ipv4(let ip), .ipv6(let ip):
            if let literal = SpliceAddress(ip: ip, port: address.port) {
                addresses.remember(literal, for: target.address)
                return .known(literal)
            }
            host = ip
        case .name(let name):
            host = name
        case .any:
            return .unusable("bad address \(target.address)")
        }
        let family = SpliceAddress.family(of: target.network)
        let port = address.port
        // The loop is held until the answer is posted (the relay may have let it go).
        DispatchQueue.global().async { [self] in
            let result = SpliceAddress.resolve(host, port: port, family: family, passive: false)
            post { resolved(result) }
        }
        return .resolving
    }

    func recordConnect(_ target: BackendTarget, nanoseconds: Int64, metrics: ShuttleMetrics) {
        connectTimers.value(for: target.id) { metrics.connectTimer(service: target.service, backend: target.name) }
            .recordNanoseconds(nanoseconds)
    }

    /// Tells the model `event` when the current batch of events ends, in
    /// order with the loop's other reports.
    func report(_ event: Event, to driver: Driver) {
        report(.event(event), to: driver)
    }

    func report(_ report: ModelReport, to driver: Driver) {
        reports.append(report)
        reportsTo = driver
    }

    private func sendReports() {
        guard let driver = reportsTo, !reports.isEmpty else { return }
        driver.report(reports)
        reports.removeAll(keepingCapacity: true)
        reportsTo = nil  // the driver owns the loop: no lasting cycle
    }

    func pumpAgain(_ connection: RelayConnection) {
        again.append(connection)
    }

    private func run() {
        var events = [cshuttle_event](repeating: cshuttle_event(), count: Self.batchSize)
        nextTick = now + Self.tickInterval
        while running {
            let timeout: Int32
            if !again.isEmpty {
                timeout = 0
            } else if connections.isEmpty && paused.isEmpty && services.isEmpty {
                timeout = -1
            } else {
                timeout = nextTick > now ? Int32((nextTick - now) / 1_000_000) + 1 : 0
            }
            let count = events.withUnsafeMutableBufferPointer {
                cshuttle_epoll_wait(epoll, $0.baseAddress, Int32(Self.batchSize), timeout)
            }
            now = cshuttle_now()
            var woken = false
            for index in 0..<max(0, Int(count)) {
                let event = events[index]
                if event.data == 0 {
                    woken = true
                    continue
                }
                let tag = event.data & 7
                guard let pointer = UnsafeRawPointer(bitPattern: UInt(event.data & ~7)) else { continue }
                Unmanaged<SpliceSource>.fromOpaque(pointer).takeUnretainedValue().handle(event.events, tag: tag, loop: self)
            }
            if !again.isEmpty {
                let pending = again
                again.removeAll(keepingCapacity: true)
                for connection in pending { connection.pump() }
            }
            if !flushing.isEmpty {
                for service in flushing { service.flushReplies() }
                flushing.removeAll(keepingCapacity: true)
            }
            if woken { runTasks() }
            if now >= nextTick {
                nextTick = now + Self.tickInterval
                for connection in connections { connection.tick(now) }
                for service in services { service.tick(now) }
                httpStateIfMade?.tick(now)
                if !paused.isEmpty { resumeAccepting() }
            }
            sendReports()
            retired.removeAll(keepingCapacity: true)
        }
        for connection in connections { connection.abort() }
        connections.removeAll()
        for service in services { service.abort() }
        services.removeAll()
        paused.removeAll()
        // From here on a posted task runs where it is posted; those already
        // waiting run now. No task touches what is cleaned up below.
        for task in takeTasks(ending: true) { task() }
        sendReports()
        again.removeAll()
        retired.removeAll()
        httpStateIfMade?.close()
        pipes.closeAll()
        scratch.deallocate()
        close(wake)
        close(epoll)
    }

    /// Stops accepting from `listener` on this loop for a second: with no
    /// descriptor left, its level-triggered readiness would spin the loop.
    func pauseAccepting(_ listener: any AcceptingSource) {
        _ = cshuttle_epoll_remove(epoll, listener.fd)
        paused.append((listener, now + 1_000_000_000))
    }

    private func resumeAccepting() {
        let due = paused.filter { $0.until <= now }
        paused.removeAll { $0.until <= now }
        for (listener, _) in due where !listener.isClosing {
            _ = register(listener.fd, events: listener.acceptEvents, source: listener, tag: listener.acceptTag)
        }
    }

    private func runTasks() {
        var count: UInt64 = 0
        _ = read(wake, &count, 8)
        for task in takeTasks() { task() }
    }

    /// The waiting tasks, taken off the queue; `ending` marks the loop
    /// ended in the same taking of the lock.
    private func takeTasks(ending: Bool = false) -> [@Sendable () -> Void] {
        tasks.withLockedValue { queue in
            if ending { queue.ended = true }
            defer { queue.waiting.removeAll() }
            return queue.waiting
        }
    }
}

#endif
