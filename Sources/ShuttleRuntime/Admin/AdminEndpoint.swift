import FoundationEssentials
import NIOHTTP1

/// What an admin API path names, with the methods it takes (COMPAT.md,
/// "Admin API"). Names starting with `_` are the API's own; service and
/// backend names cannot start with one (the model rejects them).
enum AdminEndpoint: Equatable, Sendable {
    /// `/`: stats of every service (GET) or a config update (PUT, POST).
    case root
    /// `/_stats`: stats of every service.
    case stats
    /// `/_config`: the running config (GET) or a config update (PUT, POST).
    case config
    /// `/{service}`: its stats, create or update it, remove it.
    case service(String)
    /// `/{service}/_stats`: its stats.
    case serviceStats(String)
    /// `/{service}/_config`: its config.
    case serviceConfig(String)
    /// `/{service}/{backend}`: its stats, create or replace it, remove it.
    case backend(service: String, name: String)
    /// `/_certs/reload`: load the HTTPS certificates anew (POST).
    case reloadCertificates
    /// `/_health`: 200 once every listener is bound, 503 while starting or draining.
    case health
    /// `/_metrics`: the Prometheus text format.
    case metrics

    /// The methods this endpoint answers, in the order the `Allow` header lists them.
    var allowedMethods: [HTTPMethod] {
        switch self {
        case .root, .config: return [.GET, .HEAD, .PUT, .POST]
        case .stats, .serviceStats, .serviceConfig, .health, .metrics: return [.GET, .HEAD]
        case .service, .backend: return [.GET, .HEAD, .PUT, .POST, .DELETE]
        case .reloadCertificates: return [.POST]
        }
    }

    /// Why a request target names no endpoint.
    enum ParseError: Error, Equatable {
        /// No such endpoint (more segments, an empty one, an unknown `_` name).
        case notFound(path: String)
        /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
        case badEncoding(path: String)
    }

    /// The endpoint of a request target: the path, percent-decoded segment
    /// by segment (so `%2F` stays inside its segment); the query is ignored.
    static func parse(_ target: String) -> Result<AdminEndpoint, ParseError> {
        var path = Substring(target)
        if let end = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<end] }
        // The absolute form (`http://host/path`), as some proxies send it.
        if let scheme = path.firstRange(of: "://"), path[..<scheme.lowerBound].allSatisfy(\.isLetter) {
            let rest = path[scheme.upperBound...]
            path = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        let shown = String(path)
        guard path.first == "/" else { return .failure(.notFound(path: shown)) }
        if path == "/" { return .success(.root) }

        var segments: [String] = []
        for raw in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            guard !raw.isEmpty else { return .failure(.notFound(path: shown)) }
            guard let segment = percentDecoded(raw) else { return .failure(.badEncoding(path: shown)) }
            segments.append(segment)
        }

        switch segments.count {
        case 1:
            switch segments[0] {
            case "_stats": return .success(.stats)
            case "_config": return .success(.config)
            case "_health": return .success(.health)
            case "_metrics": return .success(.metrics)
            case let name where name.hasPrefix("_"): return .failure(.notFound(path: shown))
            case let name: return .success(.service(name))
            }
        case 2 where segments == ["_certs", "reload"]:
            return .success(.reloadCertificates)
        case 2:
            let service = segments[0]
            guard !service.hasPrefix("_") else { return .failure(.notFound(path: shown)) }
            switch segments[1] {
            case "_stats": return .success(.serviceStats(service))
            case "_config": return .success(.serviceConfig(service))
            case let name where name.hasPrefix("_"): return .failure(.notFound(path: shown))
            case let name: return .success(.backend(service: service, name: name))
            }
        default:
            return .failure(.notFound(path: shown))
        }
    }

    /// `raw` with each `%XX` decoded; nil when a `%` lacks two hex digits or
    /// the bytes are not UTF-8.
    static func percentDecoded(_ raw: Substring) -> String? {
        var bytes: [UInt8] = []
        var rest = raw.utf8[...]
        while let byte = rest.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = rest.popFirst().flatMap(hexValue), let low = rest.popFirst().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension AdminEndpoint.ParseError {
    var response: AdminResponse {
        switch self {
        case .notFound(let path):
            return .notFound("no admin endpoint at \"\(path)\"")
        case .badEncoding(let path):
            return .error(.badRequest, "path \"\(path)\" has an invalid percent-encoding")
        }
    }
}
