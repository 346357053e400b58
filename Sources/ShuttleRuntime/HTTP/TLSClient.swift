import NIOSSL
import ShuttleModel

/// The TLS side of fetching error pages at https URLs.
enum TLSClient {
    /// A client context with the system's trust roots.
    static func makeContext() throws -> NIOSSLContext {
        try NIOSSLContext(configuration: .makeClientConfiguration())
    }

    /// The SNI name for `url`: its host when that is a name, none for an IP address.
    static func serverName(for url: ParsedURL) -> String? {
        guard case .success(let hostPort) = HostPort.parse("\(url.host):1", listening: false) else { return nil }
        if case .name = hostPort.host { return url.host }
        return nil
    }
}
