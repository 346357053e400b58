import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// The virtual-host listeners over real sockets on 127.0.0.1: a driver
/// configured through the model, the HTTP listener, optionally the HTTPS
/// one, and the access log's lines kept for the test.
final class HTTPHarness: Sendable {
    let proxy: ProxyHarness
    let frontend: HTTPFrontend
    let accessLog: AccessLog
    let lines: NIOLockedValueBox<[String]>
    let http: VirtualHostListener
    let https: VirtualHostListener?
    let certificates: CertificateStore?

    var group: MultiThreadedEventLoopGroup { proxy.group }
    var driver: Driver { proxy.driver }
    var httpPort: Int { http.localAddress!.port! }
    var httpsPort: Int { https!.localAddress!.port! }

    private init(
        proxy: ProxyHarness, frontend: HTTPFrontend, accessLog: AccessLog, lines: NIOLockedValueBox<[String]>,
        http: VirtualHostListener, https: VirtualHostListener?, certificates: CertificateStore?
    ) {
        self.proxy = proxy
        self.frontend = frontend
        self.accessLog = accessLog
        self.lines = lines
        self.http = http
        self.https = https
        self.certificates = certificates
    }

    /// The plain listener's relay when a test names none: the daemon's
    /// default (epoll on Linux); `SHUTTLE_TEST_HTTP_RELAY=nio` runs the HTTP
    /// suites on the other path.
    static var defaultRelay: HTTPRelay {
        ProcessInfo.processInfo.environment["SHUTTLE_TEST_HTTP_RELAY"].flatMap(HTTPRelay.init(rawValue:))
            ?? HTTPRelay.platformDefault.available
    }

    /// Starts the listeners; HTTPS too when a certificate directory is given.
    static func start(
        settings: ProxySettings = ProxySettings(), certificates directory: URL? = nil, relay: HTTPRelay = defaultRelay
    ) async throws -> HTTPHarness {
        let proxy = ProxyHarness(settings: settings)
        let lines = NIOLockedValueBox<[String]>([])
        // The output hands over whole lines, several at a time under load.
        let accessLog = AccessLog(
            output: LogOutput { text in
                lines.withLockedValue { $0.append(contentsOf: text.split(separator: "\n").map { $0 + "\n" }) }
            })
        let frontend = HTTPFrontend(driver: proxy.driver, accessLog: accessLog)
        let http = try await frontend.bindHTTP("127.0.0.1:0", relay: relay).get()
        var https: VirtualHostListener?
        var store: CertificateStore?
        if let directory {
            let certificates = CertificateStore(directory: directory.path, logger: testLogger())
            try certificates.reload()
            store = certificates
            https = try await frontend.bindHTTPS("127.0.0.1:0", certificates: certificates, relay: relay).get()
        }
        return HTTPHarness(
            proxy: proxy, frontend: frontend, accessLog: accessLog, lines: lines, http: http, https: https,
            certificates: store)
    }

    func apply(_ services: [ServiceConfig], global: Config = Config()) async throws {
        var config = global
        config.services = services
        try await proxy.apply(config)
    }

    func apply(_ command: AdminCommand) async throws {
        try await proxy.apply(command)
    }

    /// A plain connection to the HTTP listener.
    func connect() async throws -> HTTPTestConnection {
        try await HTTPTestConnection.connect(port: httpPort, group: group)
    }

    /// A TLS connection to the HTTPS listener with this SNI name.
    func connectTLS(serverName: String?, applicationProtocols: [String] = []) async throws -> HTTPTestConnection {
        try await HTTPTestConnection.connect(
            port: httpsPort, group: group,
            tls: .init(serverName: serverName, applicationProtocols: applicationProtocols))
    }

    /// One request on a fresh connection.
    func request(
        _ method: String = "GET", _ target: String = "/", host: String?, headers: [(String, String)] = [],
        body: String? = nil
    ) async throws -> RawHTTPResponse {
        let connection = try await connect()
        defer { Task { await connection.close() } }
        return try await connection.request(method, target, host: host, headers: headers, body: body)
    }

    func stats(_ service: String) -> ServiceStats? { proxy.stats(service) }

    func backendStats(_ service: String, _ backend: String) -> BackendStats? {
        driver.read { $0.stats(service: service, backend: backend) }
    }

    /// The access log lines written so far.
    func logLines() -> [String] {
        accessLog.flush()
        return lines.withLockedValue { $0 }
    }

    func shutdown() async {
        try? await http.close().get()
        try? await https?.close().get()
        frontend.shutdown()
        await proxy.shutdown()
    }
}

/// A virtual-host service: a TCP address of its own (required by the
/// config) on a free port, the given names and backends.
func vhostService(
    _ name: String, hosts: [String], backends: [BackendConfig], configure: (inout ServiceConfig) -> Void = { _ in }
) -> ServiceConfig {
    var service = ServiceConfig(name: name, address: "127.0.0.1:0", virtualHosts: hosts, backends: backends)
    configure(&service)
    return service
}

func backend(_ name: String, _ server: TestHTTPBackend, weight: Int = 0) -> BackendConfig {
    BackendConfig(name: name, address: server.address, weight: weight)
}

/// Polls an async condition until it holds or the timeout passes.
func eventuallyAsync(timeout: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
