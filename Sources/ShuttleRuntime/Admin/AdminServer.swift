import FoundationEssentials
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
    public static func bind(_ address: String, driver: Driver, access: AdminAccess = AdminAccess()) -> EventLoopFuture<any Channel> {
        if address.hasPrefix("/") {
            return bootstrap(driver, access).bind(unixDomainSocketPath: address, cleanupExistingSocketFile: true)
        }
        switch HostPort.parse(address, listening: true) {
        case .failure(let error):
            return driver.control.makeFailedFuture(AdminServerError.badAddress(address, reason: "\(error)"))
        case .success(let hostPort):
            let host = hostPort.host == .any ? "0.0.0.0" : hostPort.hostString
            // TCP options only here: a unix socket refuses them.
            return bootstrap(driver, access)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: hostPort.port)
        }
    }

    static func bootstrap(_ driver: Driver, _ access: AdminAccess) -> ServerBootstrap {
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
                    try pipeline.addHandler(AdminConnection(driver: driver, access: access))
                }
            }
    }
}

/// Who may call the admin API.
public struct AdminAccess: Sendable {
    /// `-admin-token FILE`'s token: mutating calls need `Authorization: Bearer TOKEN`.
    public var token: String?
    /// `-admin-token-reads`: reads need it too (`/_health` stays open for probes).
    public var tokenForReads = false

    public init(token: String? = nil, tokenForReads: Bool = false) {
        self.token = token
        self.tokenForReads = tokenForReads
    }

    /// Whether a request may go on: no token set, an open read, or the right token.
    func allows(method: HTTPMethod, endpoint: AdminEndpoint?, authorization: String?) -> Bool {
        guard let token else { return true }
        if endpoint == .health { return true }
        let reads = method == .GET || method == .HEAD
        if reads && !tokenForReads { return true }
        guard let authorization, authorization.lowercased().hasPrefix("bearer ") else { return false }
        return Self.constantTimeEqual(Array(authorization.utf8.dropFirst(7)), Array(token.utf8))
    }

    /// Compares without stopping at the first difference, so that the time
    /// taken says nothing about how much of a guess was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }

    /// Reads a token file: its first line, trimmed. Empty is an error.
    public static func readToken(path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AdminServerError.badToken(path, reason: "cannot be read")
        }
        let token = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map {
            String($0.trimmingSpaces())
        } ?? ""
        guard !token.isEmpty else { throw AdminServerError.badToken(path, reason: "is empty") }
        return token
    }
}

/// Why the admin API could not start.
public enum AdminServerError: Error, Equatable, CustomStringConvertible {
    /// The `-admin` value is neither `host:port` nor a socket path.
    case badAddress(String, reason: String)
    /// The `-admin-token` file cannot be used.
    case badToken(String, reason: String)

    public var description: String {
        switch self {
        case .badAddress(let address, let reason): return "admin address \"\(address)\" \(reason)"
        case .badToken(let path, let reason): return "admin token file \(path) \(reason)"
        }
    }
}
