import ArgumentParser
import FoundationEssentials
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import ShuttleModel
import ShuttleRuntime

/// The version `-v` prints.
let shuttleVersion = "0.1.0"

/// `shuttle`: the daemon, with the original's Go-style single-dash flags.
@main
struct Shuttle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shuttle",
        abstract: "A dynamic TCP/UDP/HTTP(S) proxy and load balancer, reconfigured live through its admin API.",
        subcommands: [Sim.self]
    )

    @Option(name: .goStyle("admin"), help: "Admin API address, host:port, or a unix socket path starting with /.")
    var admin = "127.0.0.1:9090"

    @Option(name: .goStyle("http"), help: "HTTP virtual-host listener address.")
    var http: String?

    @Option(name: .goStyle("https"), help: "HTTPS virtual-host listener address.")
    var https: String?

    @Option(name: .goStyle("certs"), help: "Directory of NAME.pem + NAME.key certificate pairs.")
    var certs = "./"

    @Option(name: .goStyle("config"), help: "Default config file, read at start, never written.")
    var config: String?

    @Option(name: .goStyle("state"), help: "State file, written on every change, read at start in preference to -config.")
    var state: String?

    @Flag(name: .goStyle("https-redirect", "sslOnly"), help: "Redirect all virtual-host HTTP requests to https.")
    var httpsRedirect = false

    @Flag(name: .goStyle("debug"), help: "Verbose logging.")
    var debug = false

    @Flag(name: .customShort("v"), help: "Print the version and exit.")
    var version = false

    @Option(name: .goStyle("drain-timeout"), help: "How long open connections may finish after SIGTERM/SIGINT (e.g. 10s, 500ms).")
    var drainTimeout = "10s"

    @Option(
        name: .goStyle("record"),
        help: "Record every event the model handles and its decisions to FILE (JSON lines, for `shuttle sim replay`).")
    var record: String?

    @Flag(name: .goStyle("validate"), help: "Check the state or config file, print every problem, and exit.")
    var validate = false

    @Option(name: .goStyle("log-format"), help: "Log lines as text (the access log in the original's logfmt) or json.")
    var logFormat = "text"

    @Option(name: .goStyle("admin-token"), help: "File holding a token that mutating admin calls must send as Authorization: Bearer TOKEN.")
    var adminToken: String?

    @Option(
        name: .goStyle("tcp-relay"),
        help: "How TCP services relay bytes: splice (Linux: splice(2) on our own epoll threads) or nio (SwiftNIO channels).")
    var tcpRelay = TCPRelay.platformDefault.rawValue

    @Option(
        name: .goStyle("udp-relay"),
        help: "How UDP services relay datagrams: epoll (Linux: batched reads on our own epoll threads) or nio (SwiftNIO channels).")
    var udpRelay = UDPRelay.platformDefault.rawValue

    @Option(
        name: .goStyle("http-relay"),
        help: "How the -http and -https listeners relay requests: epoll (Linux: heads read in place on the relay's epoll threads; TLS with the system's OpenSSL 3 when libssl.so.3 loads, else -https stays on nio) or nio (SwiftNIO channels, NIOSSL).")
    var httpRelay = HTTPRelay.platformDefault.rawValue

    @Flag(name: .goStyle("admin-token-reads"), help: "Admin reads need the token too (/_health stays open).")
    var adminTokenReads = false

    func run() async throws {
        if version {
            print("shuttle \(shuttleVersion)")
            return
        }
        guard let drain = GoDuration.parse(drainTimeout) else {
            throw ValidationError("-drain-timeout \"\(drainTimeout)\" is not a duration such as 10s or 500ms")
        }
        var options = DaemonOptions()
        options.admin = admin
        options.http = http
        options.https = https
        options.certs = certs
        options.httpsRedirect = httpsRedirect
        options.config = config
        options.state = state
        options.drainTimeout = drain
        guard let relay = TCPRelay(rawValue: tcpRelay) else {
            throw ValidationError("-tcp-relay \"\(tcpRelay)\" is not splice or nio")
        }
        options.tcpRelay = relay
        guard let datagramRelay = UDPRelay(rawValue: udpRelay) else {
            throw ValidationError("-udp-relay \"\(udpRelay)\" is not epoll or nio")
        }
        options.udpRelay = datagramRelay
        guard let requestRelay = HTTPRelay(rawValue: httpRelay) else {
            throw ValidationError("-http-relay \"\(httpRelay)\" is not nio or epoll")
        }
        options.httpRelay = requestRelay.available

        guard let format = LogFormat(rawValue: logFormat) else {
            throw ValidationError("-log-format \"\(logFormat)\" is not text or json")
        }
        options.logFormat = format
        if let adminToken {
            do {
                options.adminToken = try AdminAccess.readToken(path: adminToken)
            } catch {
                throw ValidationError("\(error)")
            }
        } else if adminTokenReads {
            throw ValidationError("-admin-token-reads needs -admin-token FILE")
        }
        options.adminTokenReads = adminTokenReads
        options.record = record
        let level: Logger.Level = debug ? .debug : .info
        LoggingSystem.bootstrap { label in
            var handler = ShuttleLogHandler(label: label, format: format)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "shuttle")
        // Log lines are written by a queue of their own: let it finish.
        defer { LogOutput.standardError.flush() }

        if validate {
            try runValidation(options, logger: logger)
            return
        }
        do {
            let daemon = try Daemon(options: options, logger: logger)
            MetricsSystem.bootstrap(daemon.driver.metrics.factory)
            try await daemon.run()
        } catch let error as StartError {
            writeToStandardError("shuttle: \(error)\n")
            throw ExitCode(error.exitCode)
        }
    }

    /// `-validate`: what the daemon would load, checked; exit 2 on problems.
    func runValidation(_ options: DaemonOptions, logger: Logger) throws {
        do {
            let config = try StartupConfig.load(options, logger: logger)
            print("valid: \(config.services.count) service(s)")
        } catch let error as StartError {
            writeToStandardError("shuttle: \(error)\n")
            throw ExitCode(error.exitCode)
        }
    }
}

extension NameSpecification {
    /// A Go flag: `-name` (and `--name`, which Go accepts too); several
    /// names are aliases.
    static func goStyle(_ names: String...) -> NameSpecification {
        NameSpecification(names.flatMap { [Element.customLong($0, withSingleDash: true), .customLong($0)] })
    }
}

/// Go's duration syntax for the flags that take one: `10s`, `500ms`,
/// `1m30s`; a bare number is seconds.
enum GoDuration {
    static func parse(_ text: String) -> TimeAmount? {
        if let seconds = Double(text), seconds >= 0 { return .nanoseconds(Int64(seconds * 1e9)) }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let (unit, scale) = units.sorted(by: { $0.0.count > $1.0.count }).first(where: { rest.hasPrefix($0.0) })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            total += value * scale
        }
        return .nanoseconds(Int64(total))
    }
}
