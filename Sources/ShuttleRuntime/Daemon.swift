import FoundationEssentials
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import ShuttleModel

/// What the daemon is started with: the original's flags and ours.
public struct DaemonOptions: Sendable {
    public var admin = "127.0.0.1:9090"
    /// The HTTP and HTTPS virtual-host listeners.
    public var http: String?
    public var https: String?
    /// Directory of NAME.pem + NAME.key pairs for HTTPS.
    public var certs = "./"
    /// `-https-redirect`: every virtual host redirects plain HTTP to https.
    public var httpsRedirect = false
    public var config: String?
    public var state: String?
    /// How long open connections may run after SIGTERM/SIGINT.
    public var drainTimeout = TimeAmount.seconds(10)
    /// Data-plane threads; one per core by default (as many again for the
    /// splice relay).
    public var threads = System.coreCount
    /// `-tcp-relay`: which data path TCP services use.
    public var tcpRelay = TCPRelay.platformDefault
    /// `-udp-relay`: which data path UDP services use.
    public var udpRelay = UDPRelay.platformDefault
    /// `-http-relay`: which data path the `-http` and `-https` listeners use.
    public var httpRelay = HTTPRelay.platformDefault
    public var seed: UInt64 = 0
    /// `-record FILE`: every event the model handles and its decisions, as
    /// JSON lines that `shuttle sim replay` replays.
    public var record: String?
    /// `-log-format`: the access log's format (the handler's is set by the command).
    public var logFormat = LogFormat.text
    /// `-admin-token FILE`'s token, and `-admin-token-reads`.
    public var adminToken: String?
    public var adminTokenReads = false

    public init() {}
}

/// Why the daemon did not start.
public enum StartError: Error, CustomStringConvertible {
    /// The config file is invalid: every problem.
    case invalidConfig(file: String, problems: [ConfigProblem])
    /// A listener of the initial config could not be bound.
    case cannotListen(service: String, address: String, reason: String)
    case cannotListenAdmin(address: String, reason: String)
    case cannotListenHTTP(flag: String, address: String, reason: String)
    case noCertificates(String)

    public var description: String {
        switch self {
        case .invalidConfig(let file, let problems):
            return "\(file) is not a valid config:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
        case .cannotListen(let service, let address, let reason):
            return "service \(service) cannot listen on \(address): \(reason)"
        case .cannotListenAdmin(let address, let reason):
            return "the admin API cannot listen on \(address): \(reason)"
        case .cannotListenHTTP(let flag, let address, let reason):
            return "\(flag) cannot listen on \(address): \(reason)"
        case .noCertificates(let reason):
            return "-https needs certificates: \(reason)"
        }
    }

    /// Exit status: 2 for a config that is wrong, 1 for the rest.
    public var exitCode: Int32 {
        if case .invalidConfig = self { return 2 }
        return 1
    }
}

/// Chooses the configuration to start with: the state file when it exists
/// and is usable, else the config file, else nothing.
public enum StartupConfig {
    public static func load(_ options: DaemonOptions, logger: Logger) throws -> Config {
        if let state = options.state {
            switch StateFile(path: state).load() {
            case .config(let config, let warnings):
                for warning in warnings { logger.warning("state file: \(warning)") }
                logger.info("loaded state", metadata: ["file": "\(state)"])
                return config
            case .corrupt(let reason, let keptAs):
                logger.critical(
                    "state file is unusable, starting from the config file instead",
                    metadata: ["file": "\(state)", "reason": "\(reason)", "kept_as": "\(keptAs ?? "(could not rename)")"])
            case .missing:
                break
            }
        }
        guard let file = options.config else { return Config() }
        switch ConfigFile.load(path: file) {
        case .success(let (config, warnings)):
            for warning in warnings { logger.warning("config file: \(warning)") }
            return config
        case .failure(let failure):
            throw StartError.invalidConfig(file: file, problems: failure.problems)
        }
    }
}

/// The running proxy: event loops, the model's driver, the virtual-host
/// frontend. Its work runs as two swift-service-lifecycle services: the
/// admin API, and the proxy (service listeners, health checks, virtual
/// hosts). A graceful shutdown (SIGTERM, SIGINT) stops the proxy first: its
/// listeners close, open connections finish for up to the drain timeout,
/// `/_health` answers 503 meanwhile; then the admin API stops.
public final class Daemon: Sendable {
    public let options: DaemonOptions
    public let logger: Logger
    public let group: MultiThreadedEventLoopGroup
    let controlGroup: MultiThreadedEventLoopGroup
    public let driver: Driver
    public let frontend: HTTPFrontend
    let certificates: CertificateStore?
    let accessLog: AccessLog
    let virtualHostListeners = NIOLockedValueBox<[VirtualHostListener]>([])
    let initialConfig: Config
    let recording: RecordFile?

    public init(options: DaemonOptions, logger: Logger) throws {
        self.options = options
        self.logger = logger
        initialConfig = try StartupConfig.load(options, logger: logger)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
        // The control plane has its own thread so that the admin API answers
        // promptly while the data plane is saturated.
        controlGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var httpsPort: Int?
        if let https = options.https, case .success(let address) = HostPort.parse(https, listening: true) {
            httpsPort = address.port
        }
        let settings = ProxySettings(httpsRedirect: options.httpsRedirect, httpsPort: httpsPort)
        let recording = try options.record.map { try RecordFile(path: $0, seed: options.seed, settings: settings) }
        self.recording = recording
        var recorder: (@Sendable (Event, [Action]) -> Void)?
        if let recording { recorder = { event, actions in recording.record(event, actions) } }
        driver = Driver(
            group: group, control: controlGroup.next(), logger: logger,
            stateFile: options.state.map(StateFile.init(path:)), seed: options.seed,
            settings: settings, recorder: recorder, tcpRelay: options.tcpRelay, udpRelay: options.udpRelay,
            relayThreads: options.threads)
        if let recording { recording.useClock { [driver] in driver.now } }
        accessLog = AccessLog(format: options.logFormat)
        frontend = HTTPFrontend(driver: driver, accessLog: accessLog)
        if options.https != nil {
            let store = CertificateStore(directory: options.certs, logger: logger)
            do {
                try store.reload()
            } catch {
                throw StartError.noCertificates("\(error)")
            }
            certificates = store
            driver.certificateReloader.withLockedValue { $0 = { try store.reload() } }
        } else {
            certificates = nil
        }
    }

    /// The services to run, in start order (they stop in reverse).
    public var services: [any Service] { [AdminService(daemon: self), ProxyService(daemon: self)] }

    /// Runs the services until SIGTERM or SIGINT, then stops the event loops.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            await shutdownEventLoops()
            throw error
        }
        await shutdownEventLoops()
    }

    /// Stops the event loops; every service must have stopped.
    public func shutdownEventLoops() async {
        driver.shutdownRelay()
        try? await self.group.shutdownGracefully()
        try? await controlGroup.shutdownGracefully()
    }

    /// SIGHUP: the certificates are loaded anew (open connections keep theirs).
    public func reloadCertificates() {
        guard let certificates else { return }
        do {
            try certificates.reload()
        } catch {
            logger.error("certificates not reloaded, the previous ones are still served", metadata: ["error": "\(error)"])
        }
    }

    /// Applies the initial config and binds the virtual-host listeners;
    /// throws `StartError` when the daemon cannot serve.
    func startProxy() async throws {
        let reply = try await driver.submit(.updateConfig(ConfigUpdate(initialConfig))).get()
        switch reply {
        case .applied:
            break
        case .bindFailed(let service, let address, _, let reason):
            throw StartError.cannotListen(service: service, address: address, reason: reason)
        case .rejected(let problems):
            throw StartError.invalidConfig(file: options.config ?? "config", problems: problems)
        case .notFound(let message):
            throw StartError.invalidConfig(file: options.config ?? "config", problems: [ConfigProblem(path: "", reason: message)])
        }
        var listeners: [VirtualHostListener] = []
        if let http = options.http {
            do {
                listeners.append(try await frontend.bindHTTP(http, relay: options.httpRelay).get())
            } catch {
                throw StartError.cannotListenHTTP(flag: "-http", address: http, reason: Driver.describe(error))
            }
            logger.info("HTTP virtual hosts listening", metadata: ["address": "\(listeners.last!.localAddress.map(Driver.describe) ?? http)"])
        }
        if let https = options.https, let certificates {
            do {
                listeners.append(try await frontend.bindHTTPS(https, certificates: certificates, relay: options.httpRelay).get())
            } catch {
                throw StartError.cannotListenHTTP(flag: "-https", address: https, reason: Driver.describe(error))
            }
            let listener = listeners.last!
            logger.info(
                "HTTPS virtual hosts listening",
                metadata: [
                    "address": "\(listener.localAddress.map(Driver.describe) ?? https)", "tls": "\(listener.tlsLibrary)",
                ])
        }
        virtualHostListeners.withLockedValue { $0 = listeners }
        driver.phase.withLockedValue { $0 = .serving }
    }

    /// Stops accepting, lets open connections finish, writes what is pending.
    func stopProxy() async {
        driver.phase.withLockedValue { $0 = .draining }
        logger.notice("shutting down: no new connections, draining open ones")
        try? await driver.closeListeners().get()
        for listener in virtualHostListeners.withLockedValue({ $0 }) { try? await listener.close().get() }
        driver.stopHealthChecks()
        await drain()
        driver.stateFile?.flush()
        recording?.flush()
        frontend.shutdown()
        accessLog.flush()
        logger.notice("stopped")
    }

    /// Waits until no connection is open, or the drain timeout passes.
    func drain() async {
        let deadline = NIODeadline.now() + options.drainTimeout
        while NIODeadline.now() < deadline {
            let open = driver.read { $0.openConnections }
            if open == 0 { return }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        logger.warning("drain timeout: closing the connections still open", metadata: ["open": "\(driver.read { $0.openConnections })"])
    }
}

/// The admin API as a service: bound first, stopped last, so that
/// `/_health` can say 503 while the proxy drains.
struct AdminService: Service {
    let daemon: Daemon

    func run() async throws {
        let options = daemon.options
        let access = AdminAccess(token: options.adminToken, tokenForReads: options.adminTokenReads)
        let admin: any Channel
        do {
            admin = try await AdminServer.bind(options.admin, driver: daemon.driver, access: access).get()
        } catch {
            throw StartError.cannotListenAdmin(address: options.admin, reason: Driver.describe(error))
        }
        daemon.logger.info(
            "admin API listening", metadata: ["address": "\(admin.localAddress.map(Driver.describe) ?? options.admin)"])
        try? await gracefulShutdown()
        try? await admin.close().get()
        if options.admin.hasPrefix("/") { unlink(options.admin) }
    }
}

/// The proxy as a service: the services' listeners and health checks (both
/// carried out by the driver as the model asks) and the virtual hosts.
struct ProxyService: Service {
    let daemon: Daemon

    func run() async throws {
        try await daemon.startProxy()
        let trim = MemoryTrim.start(on: daemon.driver.control)
        defer { trim?.cancel() }
        let hangups = Task {
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                daemon.logger.notice("SIGHUP: reloading certificates")
                daemon.reloadCertificates()
            }
        }
        defer { hangups.cancel() }
        try? await gracefulShutdown()
        await daemon.stopProxy()
    }
}
