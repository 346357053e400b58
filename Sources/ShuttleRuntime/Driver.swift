import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ShuttleModel
import Synchronization

/// Drives the model over real sockets: sends it events, carries out its
/// actions. It decides nothing itself; every decision is the `Registry`'s.
///
/// The registry sits behind one lock, held only while the model handles an
/// event (never during I/O). Actions about one client connection
/// (`connectBackend`, `closeClient`) are carried out by that connection;
/// everything else by `perform(_:)`.
public final class Driver: Sendable {
    /// Data-plane event loops: listeners and proxied connections.
    public let group: any EventLoopGroup
    /// The loop of the control plane: admin requests, health checks, files.
    public let control: any EventLoop
    public let logger: Logger
    let stateFile: StateFile?
    let registry: NIOLockedValueBox<Registry>
    let resources = NIOLockedValueBox(Resources())
    let connectionCounter = Atomic<UInt64>(0)
    let origin = NIODeadline.now()
    /// Which data path TCP services use.
    public let tcpRelay: TCPRelay
    /// Which data path UDP services use.
    public let udpRelay: UDPRelay
    /// Flows each UDP service keeps at most (`FlowLimits.maximumFlows`).
    let udpFlowLimit: Int
    let relayThreads: Int
    #if os(Linux)
    /// The relay's own epoll threads, started with the first listener of a
    /// TCP service on the splice relay or of a UDP service on the epoll relay.
    let spliceRelay = NIOLockedValueBox<SpliceRelay?>(nil)
    #endif
    /// Observes every event and the actions it produced (for `-record`).
    let recorder: (@Sendable (Event, [Action]) -> Void)?

    struct Resources {
        var listeners: [ListenerID: BoundListener] = [:]
        var checks: [BackendID: HealthChecker] = [:]
        var replies: [RequestID: EventLoopPromise<AdminReply>] = [:]
        var nextRequest: UInt64 = 1
        var draining = false
    }

    /// Metrics for `/_metrics`.
    public let metrics = ShuttleMetrics()
    /// When each kind of repeated warning was last logged (see `shouldLog`).
    private let warningLimiters = NIOLockedValueBox(BoundedCache<String, WarningLimiter>())
    /// Where the daemon is in its life, for `/_health`.
    public let phase = NIOLockedValueBox(Phase.starting)

    /// The daemon's phases as `/_health` reports them.
    public enum Phase: String, Sendable {
        /// Listeners are being bound.
        case starting
        /// Every listener is bound.
        case serving
        /// Shutting down: no new connections, open ones finishing.
        case draining
    }

    /// Reloads the HTTPS certificates, when there is an HTTPS listener.
    public let certificateReloader = NIOLockedValueBox<(@Sendable () throws -> CertificateStore.Report)?>(nil)
    /// Called with the running config after every change (error pages follow it).
    let configObservers = NIOLockedValueBox<[@Sendable (Config) -> Void]>([])
    /// Called with each backend that left the config (HTTP pools close its
    /// idle connections).
    let retirementObservers = NIOLockedValueBox<[@Sendable (BackendID) -> Void]>([])

    public init(
        group: any EventLoopGroup, control: any EventLoop, logger: Logger, stateFile: StateFile?, seed: UInt64 = 0,
        settings: ProxySettings = ProxySettings(), recorder: (@Sendable (Event, [Action]) -> Void)? = nil,
        tcpRelay: TCPRelay = .platformDefault, udpRelay: UDPRelay = .platformDefault, relayThreads: Int = System.coreCount,
        udpFlowLimit: Int? = nil
    ) {
        self.udpFlowLimit = max(1, udpFlowLimit ?? FlowLimits.maximumFlows)
        self.tcpRelay = tcpRelay.available
        self.udpRelay = udpRelay.available
        self.relayThreads = max(1, relayThreads)
        self.group = group
        self.control = control
        self.logger = logger
        self.stateFile = stateFile
        self.registry = NIOLockedValueBox(Registry(seed: seed, settings: settings))
        self.recorder = recorder
    }

    /// The model's clock: monotonic time since the driver started.
    public var now: Instant { Instant(nanoseconds: UInt64(max(0, (NIODeadline.now() - origin).nanoseconds))) }

    /// A fresh connection id.
    func makeConnectionID() -> ConnectionID {
        ConnectionID(connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// Calls `observer` with the running config after every change.
    public func observeConfig(_ observer: @escaping @Sendable (Config) -> Void) {
        configObservers.withLockedValue { $0.append(observer) }
    }

    /// Calls `observer` with each backend that leaves the config.
    func observeRetiredBackends(_ observer: @escaping @Sendable (BackendID) -> Void) {
        retirementObservers.withLockedValue { $0.append(observer) }
    }

    /// Feeds one event to the model and returns its actions, unperformed.
    @discardableResult
    public func send(_ event: Event) -> [Action] {
        // Recorded under the lock, so that the recording has the model's order.
        registry.withLockedValue { registry in
            let actions = registry.handle(event)
            recorder?(event, actions)
            return actions
        }
    }

    /// A new client connection (or UDP flow): `.clientConnected` without
    /// the array of actions, for the data path.
    public func place(_ connection: ConnectionID, listener: ListenerID, key: BalanceKey) -> Placement {
        // Recorded under the lock, as `send` records: placed by two loops at
        // once, recorded outside it, the recording could have the other
        // order and not replay.
        registry.withLockedValue { registry in
            let placement = registry.place(connection, listener: listener, key: key)
            recorder?(.clientConnected(connection, listener: listener, key: key), [placement.action(for: connection)])
            return placement
        }
    }

    /// An HTTP request's head: `.requestReceived` without the array of
    /// actions, for both HTTP paths. Recorded under the lock, as `place`.
    public func placeRequest(_ id: ConnectionID, _ request: HTTPRequest) -> RequestPlacement {
        registry.withLockedValue { registry in
            let placement = registry.placeRequest(id, request)
            recorder?(.requestReceived(id, request), [placement.action(for: id)])
            return placement
        }
    }

    /// Whether to log a warning of kind `key` now (at most once a second
    /// per key), and how many were held back since the last one. A backend
    /// that is down, or a service with none up, would otherwise log a line
    /// for every client that tried it: thousands a second under load.
    func shouldLog(_ key: String) -> (say: Bool, heldBack: Int) {
        let now = UInt64(NIODeadline.now().uptimeNanoseconds)
        return warningLimiters.withLockedValue { limiters in
            limiters.update(key, orMake: { WarningLimiter() }) { $0.shouldSay(now: now) }
        }
    }

    /// Logs that a connection to `target` could not be made (see `shouldLog`).
    func logConnectFailure(to target: BackendTarget, reason: String, message: Logger.Message = "backend connect failed") {
        let (say, heldBack) = shouldLog("connect \(target.id)")
        guard say else { return }
        logger.info(
            message,
            metadata: [
                "service": "\(target.service)", "backend": "\(target.name)", "address": "\(target.address)",
                "error": "\(reason)", "held_back": "\(heldBack)",
            ])
    }

    /// Logs that `client` was closed because the model found no backend
    /// for it (see `shouldLog`: once a second per service).
    func logClosedWithoutBackend(client: @autoclosure () -> String, reason: CloseReason) {
        let (say, heldBack) = shouldLog(reason.warningKey)
        guard say else { return }
        logger.warning(
            "client closed without a backend",
            metadata: ["client": "\(client())", "reason": "\(reason)", "held_back": "\(heldBack)"])
    }

    /// Reads the model's state.
    public func read<T>(_ body: (Registry) -> T) -> T {
        registry.withLockedValue { body($0) }
    }

    /// Routes an HTTP request's host to a service (moves the vhost's round robin).
    public func routeVirtualHost(_ host: String) -> String? {
        registry.withLockedValue { $0.routeVirtualHost(host) }
    }

    /// Sends an admin command; the future completes with the model's answer
    /// once the listeners it needs are bound (or failed).
    public func submit(_ command: AdminCommand) -> EventLoopFuture<AdminReply> {
        let promise = control.makePromise(of: AdminReply.self)
        let id = resources.withLockedValue { r -> RequestID in
            let id = RequestID(r.nextRequest)
            r.nextRequest += 1
            r.replies[id] = promise
            return id
        }
        perform(send(.admin(id, command)))
        return promise.futureResult
    }

    /// Carries out actions that are not about one client connection.
    public func perform(_ actions: [Action]) {
        for action in actions { perform(action) }
    }

    func perform(_ action: Action) {
        switch action {
        case .bindListener(let listener):
            bind(listener)
        case .closeListener(let id):
            let listener = resources.withLockedValue { $0.listeners.removeValue(forKey: id) }
            _ = listener?.close(on: control)
        case .startHealthCheck(let check):
            let checker = HealthChecker(check: check, driver: self)
            let previous = resources.withLockedValue { r -> HealthChecker? in
                let previous = r.checks[check.backend]
                r.checks[check.backend] = checker
                return previous
            }
            previous?.stop()
            checker.start()
        case .stopHealthCheck(let id):
            resources.withLockedValue { $0.checks.removeValue(forKey: id) }?.stop()
        case .retireBackend(let id):
            for observer in retirementObservers.withLockedValue({ $0 }) { observer(id) }
        case .persist(let config):
            stateFile?.write(config, logger: logger)
            for observer in configObservers.withLockedValue({ $0 }) { observer(config) }
        case .reply(let id, let reply):
            resources.withLockedValue { $0.replies.removeValue(forKey: id) }?.succeed(reply)
        case .backendHealthChanged(_, let service, let backend, let isUp):
            logger.notice(
                "backend \(isUp ? "up" : "down")",
                metadata: ["service": "\(service)", "backend": "\(backend)"])
        case .connectBackend(let id, _), .closeClient(let id, _), .answerRequest(let id, _):
            // Only the connection itself can carry these out.
            logger.error("connection action reached the driver", metadata: ["connection": "\(id)"])
        }
    }

    func bind(_ listener: Listener) {
        let bound: EventLoopFuture<BoundListener>
        if listener.network.isDatagram {
            bound = udpRelay == .epoll ? bindSplice(listener) : UDPListener.bind(listener, driver: self).map { .channel($0) }
        } else if tcpRelay == .splice {
            bound = bindSplice(listener)
        } else {
            bound = TCPListener.bind(listener, driver: self).map { .channel($0) }
        }
        bound.whenComplete { result in
            switch result {
            case .success(let bound):
                self.resources.withLockedValue { $0.listeners[listener.id] = bound }
                let address = bound.address ?? listener.address
                self.logger.info(
                    "listening", metadata: ["service": "\(listener.service)", "address": "\(address)", "network": "\(listener.network.rawValue)"])
                self.perform(self.send(.listenerBound(listener.id, address: address)))
            case .failure(let error):
                self.logger.error(
                    "cannot listen",
                    metadata: ["service": "\(listener.service)", "address": "\(listener.address)", "error": "\(error)"])
                self.perform(self.send(.listenerFailed(listener.id, reason: Self.describe(error))))
            }
        }
    }

    #if os(Linux)
    /// The relay's epoll loops, started on first use.
    func startRelay() throws -> SpliceRelay {
        try spliceRelay.withLockedValue { relay in
            if let relay { return relay }
            let started = try SpliceRelay(threads: relayThreads)
            relay = started
            return started
        }
    }
    #endif

    private func bindSplice(_ listener: Listener) -> EventLoopFuture<BoundListener> {
        #if os(Linux)
        do {
            let relay = try startRelay()
            if listener.network.isDatagram {
                return control.makeSucceededFuture(.datagram(try DatagramService.bind(listener, driver: self, relay: relay)))
            }
            return control.makeSucceededFuture(.splice(try SpliceListener.bind(listener, driver: self, relay: relay)))
        } catch {
            return control.makeFailedFuture(error)
        }
        #else
        if listener.network.isDatagram { return UDPListener.bind(listener, driver: self).map { .channel($0) } }
        return TCPListener.bind(listener, driver: self).map { .channel($0) }
        #endif
    }

    /// Ends the splice relay's threads, closing the connections still open
    /// on them (the NIO ones end with their event loop group).
    public func shutdownRelay() {
        #if os(Linux)
        spliceRelay.withLockedValue { relay in
            relay?.shutdown()
            relay = nil
        }
        #endif
    }

    /// Stops accepting: closes every listener. Open connections go on.
    public func closeListeners() -> EventLoopFuture<Void> {
        let listeners = resources.withLockedValue { r -> [BoundListener] in
            r.draining = true
            defer { r.listeners.removeAll() }
            return Array(r.listeners.values)
        }
        let closes = listeners.map { $0.close(on: control) }
        return EventLoopFuture.andAllComplete(closes, on: control)
    }

    /// Stops every health check.
    public func stopHealthChecks() {
        let checks = resources.withLockedValue { r -> [HealthChecker] in
            defer { r.checks.removeAll() }
            return Array(r.checks.values)
        }
        for check in checks { check.stop() }
    }

    /// Whether the listeners were closed for a shutdown.
    public var isDraining: Bool { resources.withLockedValue { $0.draining } }

    /// `ip:port` (IPv6 in brackets) of a socket address.
    public static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v4: return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        case .v6: return "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        case .unixDomainSocket: return address.pathname ?? "unix"
        }
    }

    /// A short reason for an I/O error, for users.
    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return io.description }
        if let connect = error as? NIOConnectionError {
            // The one attempt that matters, without the wrapping.
            if let last = connect.connectionErrors.last { return describe(last.error) }
            if let dns = connect.dnsAError ?? connect.dnsAAAAError { return "cannot resolve \(connect.host): \(dns)" }
        }
        if case .connectTimeout(let timeout) = error as? ChannelError {
            return "connect timed out after \(timeout.nanoseconds / 1_000_000) ms"
        }
        return "\(error)"
    }
}

extension CloseReason {
    /// Which `Driver.shouldLog` limit a client closed for this reason counts against.
    var warningKey: String {
        switch self {
        case .noService: "no service"
        case .noBackend(let service), .allBackendsFailed(let service, _): "no backend \(service)"
        }
    }
}
