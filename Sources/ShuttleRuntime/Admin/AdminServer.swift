import NIOCore
import NIOHTTP1
import NIOPosix
import ShuttleModel

/// The admin HTTP API (COMPAT.md, "Admin API"): stats, the running config,
/// and changes to it, as JSON. It runs on the driver's control loop and
/// hands every change to the model through `Driver.submit`.
public enum AdminServer {
    /// A client that says nothing for this long is disconnected.
    static let idleTimeout = TimeAmount.minutes(5)

    /// Starts listening on `address`: TCP `host:port` (`:port` for every
    /// interface, port 0 for any free port; the bound port is the returned
    /// channel's `localAddress`), or a unix domain socket when the value
    /// starts with `/` (a stale socket file there is removed first; removing
    /// it at exit is the caller's job). Close the returned channel to stop.
    public static func bind(_ address: String, driver: Driver) -> EventLoopFuture<any Channel> {
        if address.hasPrefix("/") {
            return bootstrap(driver).bind(unixDomainSocketPath: address, cleanupExistingSocketFile: true)
        }
        switch HostPort.parse(address, listening: true) {
        case .failure(let error):
            return driver.control.makeFailedFuture(AdminServerError.badAddress(address, reason: "\(error)"))
        case .success(let hostPort):
            let host = hostPort.host == .any ? "0.0.0.0" : hostPort.hostString
            // TCP options only here: a unix socket refuses them.
            return bootstrap(driver)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: hostPort.port)
        }
    }

    static func bootstrap(_ driver: Driver) -> ServerBootstrap {
        ServerBootstrap(group: driver.control)
            .serverChannelOption(.backlog, value: 128)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    // Pipelining assistance gives `AdminConnection` one
                    // request at a time; error handling answers parse errors
                    // (garbage, oversized headers) with 400 and closes.
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try pipeline.addHandler(AdminConnection(driver: driver))
                }
            }
    }
}

/// Why the admin API could not start.
public enum AdminServerError: Error, Equatable, CustomStringConvertible {
    /// The `-admin` value is neither `host:port` nor a socket path.
    case badAddress(String, reason: String)

    public var description: String {
        switch self {
        case .badAddress(let address, let reason): return "admin address \"\(address)\" \(reason)"
        }
    }
}
