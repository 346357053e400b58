import Foundation
import Logging
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// A driver on its own event loops, configured through the model as the
/// admin API would, for tests over real sockets on 127.0.0.1.
final class ProxyHarness: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let driver: Driver

    init(
        settings: ProxySettings = ProxySettings(), relay: TCPRelay = .platformDefault, udpRelay: UDPRelay = .platformDefault,
        udpFlowLimit: Int? = nil, logger: Logger = testLogger()
    ) {
        driver = Driver(
            group: group, control: group.next(), logger: logger, stateFile: nil, settings: settings,
            tcpRelay: relay, udpRelay: udpRelay, relayThreads: 2, udpFlowLimit: udpFlowLimit)
    }

    /// Applies a command and expects it to be applied.
    @discardableResult
    func apply(_ command: AdminCommand, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Config {
        let reply = try await driver.submit(command).get()
        guard case .applied(let config) = reply else {
            Issue.record("not applied: \(reply)", sourceLocation: sourceLocation)
            throw HarnessError.notApplied(reply)
        }
        return config
    }

    func apply(_ config: Config) async throws {
        try await apply(.updateConfig(ConfigUpdate(config)))
    }

    /// The port a service's listener got.
    func port(of service: String) throws -> Int {
        let bound = try #require(driver.read { $0.listener(ofService: service)?.boundAddress })
        guard case .success(let address) = HostPort.parse(bound, listening: true) else {
            throw HarnessError.noPort(bound)
        }
        return address.port
    }

    func stats(_ service: String) -> ServiceStats? { driver.read { $0.stats(service: service) } }

    func shutdown() async {
        try? await driver.closeListeners().get()
        driver.stopHealthChecks()
        driver.shutdownRelay()
        try? await group.shutdownGracefully()
    }
}

/// A logger that is quiet unless `TEST_LOG` is set.
func testLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG"] != nil ? .trace : .critical
    return logger
}

enum HarnessError: Error {
    case notApplied(AdminReply)
    case noPort(String)
}

/// A TCP service on a free port of 127.0.0.1 with the given backends.
func tcpService(_ name: String, balance: String = "", backends: [BackendConfig], network: String = "") -> ServiceConfig {
    ServiceConfig(name: name, address: "127.0.0.1:0", network: network, balance: balance, backends: backends)
}

func backend(_ name: String, port: Int, weight: Int = 0, checkPort: Int? = nil, network: String = "") -> BackendConfig {
    BackendConfig(
        name: name, address: "127.0.0.1:\(port)", network: network,
        checkAddress: checkPort.map { "127.0.0.1:\($0)" } ?? "", weight: weight)
}

/// A proxy on `relay` whose TCP service `name` has one backend, at
/// `backendPort` of 127.0.0.1; and the port the service got.
func proxyWithService(
    _ name: String, relay: TCPRelay, backendPort: Int, configure: (inout ServiceConfig) -> Void = { _ in }
) async throws -> (proxy: ProxyHarness, port: Int) {
    let proxy = ProxyHarness(relay: relay)
    var service = tcpService(name, backends: [backend("a", port: backendPort)])
    configure(&service)
    try await proxy.apply(Config(services: [service]))
    return (proxy, try proxy.port(of: name))
}

/// A proxy whose TCP service `name` has one backend, a listener that
/// connects hang on, and the given connect timeout. Close the listener.
func proxyToHangingBackend(
    _ name: String, relay: TCPRelay, connectTimeout: Int
) async throws -> (ProxyHarness, HangingListener) {
    let server = try RawSocket.hangingListener()
    do {
        let (proxy, _) = try await proxyWithService(name, relay: relay, backendPort: server.port) {
            $0.connectTimeout = connectTimeout
        }
        return (proxy, server)
    } catch {
        server.close()
        throw error
    }
}
