import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ShuttleModel

/// What every virtual-host connection shares: the driver, the per-loop
/// backend pools, the error pages and the access log.
public final class HTTPFrontend: Sendable {
    let driver: Driver
    let errorPages: ErrorPages
    let accessLog: AccessLog
    /// What each event loop of the data plane keeps to itself, built once:
    /// lookups need no lock.
    let loops: [ObjectIdentifier: LoopState]
    /// Whether the relay's loops are told of retired backends (once, for
    /// either listener on them).
    private let retiresOnRelay = NIOLockedValueBox(false)

    /// One event loop's backend pool, request-id generator, and the model
    /// events and request times it tells once per turn of the loop.
    final class LoopState: @unchecked Sendable {  // used on its own event loop only
        let loop: any EventLoop
        let pool: BackendPool
        /// Request ids need to be unlikely to repeat, not secret: a generator
        /// seeded once costs no system call per request.
        var requestIDs: SeededGenerator
        /// What the model gives no actions for (a backend connected, a
        /// request served with its bytes), and request times,
        /// handed over when the loop's turn ends. Told one by one they took
        /// the model's lock three times per request, and the metrics' locks
        /// twice, with the other loops doing the same: 0.4 futex calls per
        /// request.
        private var reports: [ModelReport] = []
        private var requestTimes: [(service: String, nanoseconds: Int64)] = []
        /// Each service's request timer, looked up once.
        private var requestTimers = BoundedCache<String, CoreMetrics.Timer>()

        init(loop: any EventLoop) {
            self.loop = loop
            pool = BackendPool(loop: loop)
            var system = SystemRandomNumberGenerator()
            requestIDs = SeededGenerator(seed: system.next())
        }

        func report(_ report: ModelReport, driver: Driver) {
            if reports.isEmpty && requestTimes.isEmpty { sendWhenTurnEnds(driver) }
            reports.append(report)
        }

        func recordRequest(service: String, nanoseconds: Int64, driver: Driver) {
            if reports.isEmpty && requestTimes.isEmpty { sendWhenTurnEnds(driver) }
            requestTimes.append((service, nanoseconds))
        }

        /// NIO runs tasks after the I/O of its turn: everything reported
        /// meanwhile goes in one taking of each lock.
        private func sendWhenTurnEnds(_ driver: Driver) {
            loop.execute { [self] in
                if !reports.isEmpty {
                    driver.report(reports)
                    reports.removeAll(keepingCapacity: true)
                }
                for (service, nanoseconds) in requestTimes {
                    requestTimers.value(for: service) { driver.metrics.requestTimer(service: service) }
                        .recordNanoseconds(nanoseconds)
                }
                requestTimes.removeAll(keepingCapacity: true)
            }
        }
    }

    /// What `loop` keeps to itself; nil for a loop that is not the data
    /// plane's (an embedded channel in tests).
    func state(of loop: any EventLoop) -> LoopState? {
        loops[ObjectIdentifier(loop)]
    }

    public init(driver: Driver, accessLog: AccessLog) {
        self.driver = driver
        self.accessLog = accessLog
        errorPages = ErrorPages(driver: driver)
        var loops: [ObjectIdentifier: LoopState] = [:]
        for loop in driver.group.makeIterator() {
            loops[ObjectIdentifier(loop)] = LoopState(loop: loop)
        }
        self.loops = loops
        let pages = errorPages
        driver.observeConfig { pages.update($0) }
        let pools = loops.values.map { ($0.loop, $0.pool) }
        driver.observeRetiredBackends { backend in
            for (loop, pool) in pools { loop.execute { pool.retire(backend) } }
        }
    }

    func pool(for loop: any EventLoop) -> BackendPool? {
        state(of: loop)?.pool
    }

    /// A request id for `head` (see `HeaderRules.requestID`), drawn on `loop`.
    func requestID(for head: HTTPRequestHead, on loop: any EventLoop) -> String {
        let random: UInt64
        if let state = state(of: loop) {
            random = state.requestIDs.next()
        } else {
            random = UInt64.random(in: .min ... .max)
        }
        return HeaderRules.requestID(for: head, random: random)
    }

    /// Binds a plain HTTP virtual-host listener, on NIO's loops or the
    /// relay's (`-http-relay`).
    public func bindHTTP(_ address: String, relay: HTTPRelay = .nio) -> EventLoopFuture<VirtualHostListener> {
        #if os(Linux)
        if relay == .epoll { return bindOnRelay(address, certificates: nil) }
        #endif
        return bind(address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try Self.addHTTPHandlers(to: channel, frontend: self, isTLS: false)
            }
        }
    }

    /// Binds the HTTPS virtual-host listener; certificates come from
    /// `store`. On the relay (`-http-relay epoll`), TLS is the system's
    /// OpenSSL; without it, NIO's path serves HTTPS.
    public func bindHTTPS(_ address: String, certificates store: CertificateStore, relay: HTTPRelay = .nio)
        -> EventLoopFuture<VirtualHostListener>
    {
        #if os(Linux)
        if relay == .epoll {
            if let reason = SystemTLS.unavailable {
                driver.logger.notice(
                    "HTTPS stays on SwiftNIO: the relay's TLS needs the system's OpenSSL 3",
                    metadata: ["reason": "\(reason)"])
            } else {
                return bindOnRelay(address, certificates: store)
            }
        }
        #endif
        let context: NIOSSLContext
        do {
            context = try store.makeServerContext()
        } catch {
            return driver.control.makeFailedFuture(error)
        }
        return bind(address) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                try Self.addHTTPHandlers(to: channel, frontend: self, isTLS: true)
            }
        }
    }

    #if os(Linux)
    /// Binds a listener on the relay's loops; HTTPS with `certificates`.
    private func bindOnRelay(_ address: String, certificates: CertificateStore?)
        -> EventLoopFuture<VirtualHostListener>
    {
        do {
            let spliceRelay = try driver.startRelay()
            _ = try certificates?.relayCertificates()
            let listener = try HTTPRelayListener.bind(
                address, frontend: self, relay: spliceRelay, certificates: certificates)
            let first = retiresOnRelay.withLockedValue { observed in
                defer { observed = true }
                return !observed
            }
            if first {
                driver.observeRetiredBackends { backend in
                    for loop in spliceRelay.loops { loop.post { loop.retireHTTPBackend(backend) } }
                }
            }
            return driver.control.makeSucceededFuture(
                VirtualHostListener(channels: [], relay: listener, control: driver.control))
        } catch {
            return driver.control.makeFailedFuture(error)
        }
    }
    #endif

    /// The largest request line and headers taken; larger ones get 431.
    static let maximumHeadSize = 64 * 1024

    static func addHTTPHandlers(to channel: any Channel, frontend: HTTPFrontend, isTLS: Bool) throws {
        let sync = channel.pipeline.syncOperations
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = maximumHeadSize
        limits.maxHeaderListSize = maximumHeadSize
        // After an upgrade request the decoder stops; what follows is handed on as bytes.
        let decoder = ByteToMessageHandler(
            HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .drop, limitConfiguration: limits))
        // The proxy frames answers itself: only it knows the request's
        // method (no body for HEAD) and the client's version.
        var encoding = HTTPResponseEncoder.Configuration()
        encoding.automaticallySetFramingHeaders = false
        let encoder = HTTPResponseEncoder(configuration: encoding)
        let proxy = HTTPProxyHandler(frontend: frontend, isTLS: isTLS)
        proxy.codecHandlers = [encoder, decoder]
        // Malformed requests (431, 400) and pipelined ones are handled by the proxy handler.
        try sync.addHandler(encoder)
        try sync.addHandler(decoder)
        try sync.addHandler(proxy)
    }

    /// A client connection's read buffer stays with the channel between
    /// reads, so its first size is what an idle keep-alive connection
    /// holds: 512 bytes covers most request heads, and larger reads grow it
    /// (NIO's default starts at 2 KiB: 1.5 MiB more for 1,000 idle clients).
    static let clientReadAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 64 * 1024)

    /// How many clients one wake-up of a loop accepts from its socket
    /// before it serves its other connections.
    static let acceptsPerWakeup = 16

    func bind(_ address: String, initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>)
        -> EventLoopFuture<VirtualHostListener>
    {
        VirtualHostListener.bind(address, group: driver.group) { bootstrap in
            bootstrap
                .serverChannelOption(.maxMessagesPerRead, value: UInt(Self.acceptsPerWakeup))
                .childChannelInitializer { channel in
                    // Set here rather than as a child channel option, which
                    // NIO applies through a chain of futures for every connection.
                    do {
                        try channel.syncOptions?.setOption(.recvAllocator, value: Self.clientReadAllocator)
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    return initializer(channel)
                }
        }
    }

    /// Closes the idle backend connections of every pool.
    public func closeIdleBackends() {
        for state in loops.values {
            let pool = state.pool
            pool.loop.execute { pool.closeAll() }
        }
    }

    /// At shutdown: closes the idle backend connections and stops
    /// fetching error pages.
    public func shutdown() {
        closeIdleBackends()
        errorPages.stop()
    }
}
