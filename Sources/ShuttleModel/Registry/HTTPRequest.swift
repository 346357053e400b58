/// What the model needs to know of an HTTP request to route it.
public struct HTTPRequest: Equatable, Hashable, Sendable {
    /// The `Host` header's value, nil when it is missing.
    public var host: String?
    /// How many `Host` header lines the request has: more than one is a
    /// bad request (RFC 9112 §3.2), which a backend might read otherwise.
    public var hostFields: Int
    /// The request target as received (`/path?query`, or absolute form).
    public var uri: String
    /// Whether it arrived over TLS.
    public var isTLS: Bool
    /// The `X-Forwarded-Proto` header's value, if any.
    public var forwardedProto: String?
    /// For consistent hashing: the client's address.
    public var key: BalanceKey

    public init(
        host: String?, hostFields: Int? = nil, uri: String, isTLS: Bool = false, forwardedProto: String? = nil,
        key: BalanceKey = .none
    ) {
        self.host = host
        self.hostFields = hostFields ?? (host == nil ? 0 : 1)
        self.uri = uri
        self.isTLS = isTLS
        self.forwardedProto = forwardedProto
        self.key = key
    }

    /// The host the request is for: the authority of an absolute-form
    /// target (`http://host:port/path`), which wins over `Host` (RFC 9112
    /// §3.2.2, as Go's net/http reads it), else the `Host` header.
    public var authority: String? {
        // Origin form (`/path`) and `*`, nearly every request: no search.
        if uri.utf8.first == UInt8(ascii: "/") || uri == "*" { return host }
        guard let scheme = uri.firstRange(of: "://"), !uri[..<scheme.lowerBound].isEmpty,
            uri[..<scheme.lowerBound].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) })
        else { return host }
        let rest = uri[scheme.upperBound...]
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        return String(authority)
    }
}

/// An answer to an HTTP request that involves no backend.
public enum HTTPAnswer: Equatable, Hashable, Sendable {
    /// 400: the `Host` header is missing or malformed.
    case badRequest(reason: String)
    /// 404 `Not found`: no virtual host has this name.
    case unknownHost(String)
    /// 301 to `location`: the service (or the proxy) redirects to https.
    case redirect(service: String, location: String)
    /// 503: the service is in maintenance mode.
    case maintenance(service: String)
    /// 503: the service has no backend up.
    case noBackend(service: String)
    /// 502: no backend of the service accepted a connection.
    case allBackendsFailed(service: String, lastError: String)

    /// The status code of the answer.
    public var status: Int {
        switch self {
        case .badRequest: return 400
        case .unknownHost: return 404
        case .redirect: return 301
        case .maintenance, .noBackend: return 503
        case .allBackendsFailed: return 502
        }
    }

    /// The service whose error pages apply, if any.
    public var service: String? {
        switch self {
        case .badRequest, .unknownHost: return nil
        case .redirect(let s, _), .maintenance(let s), .noBackend(let s), .allBackendsFailed(let s, _): return s
        }
    }
}

/// How an HTTP request placed on a backend ended.
public enum RequestOutcome: Equatable, Hashable, Sendable {
    /// The backend's response (status) went to the client.
    case responded(status: Int)
    /// The proxy answered with an error after the backend was chosen: the
    /// backend reset, sent garbage (502) or did not answer in time (504).
    case failed(status: Int, reason: String)
    /// The client went away first.
    case clientGone
}

/// Settings of the proxy that are not part of the config: the command line's.
public struct ProxySettings: Equatable, Hashable, Sendable {
    /// `-https-redirect`: redirect every virtual host's plain HTTP requests.
    public var httpsRedirect: Bool
    /// The port of the `-https` listener, for redirect locations (omitted when 443).
    public var httpsPort: Int?

    public init(httpsRedirect: Bool = false, httpsPort: Int? = nil) {
        self.httpsRedirect = httpsRedirect
        self.httpsPort = httpsPort
    }
}

/// What the model made of an HTTP request: `.requestReceived`'s one action.
public enum RequestPlacement: Equatable, Sendable {
    /// Connect to this backend for it: `.connectBackend`.
    case connect(BackendTarget)
    /// Answer it without a backend: `.answerRequest`.
    case answer(HTTPAnswer)

    /// The action it stands for.
    public func action(for request: ConnectionID) -> Action {
        switch self {
        case .connect(let target): return .connectBackend(request, target)
        case .answer(let answer): return .answerRequest(request, answer)
        }
    }
}

extension Registry {
    mutating func requestReceived(_ id: ConnectionID, _ request: HTTPRequest) -> [Action] {
        [placeRequest(id, request).action(for: id)]
    }

    /// An HTTP request's head arrived: the same as handling
    /// `.requestReceived`, without the array of actions, for the drivers'
    /// hot path. Routes the request by its host, then redirects it, answers
    /// it for maintenance, or places it on a backend like a TCP connection.
    public mutating func placeRequest(_ id: ConnectionID, _ request: HTTPRequest) -> RequestPlacement {
        guard request.hostFields <= 1 else {
            return .answer(.badRequest(reason: "more than one Host header"))
        }
        guard let header = request.authority, let host = VirtualHostName.fromHostHeader(header) else {
            return .answer(.badRequest(reason: "missing or malformed Host header"))
        }
        guard let name = route(lookupForm: host), let index = services.index(forKey: name) else {
            return .answer(.unknownHost(host))
        }
        let secure = request.isTLS || request.forwardedProto?.lowercased() == "https"
        let admission = services.values[index].admit(
            key: request.key, secure: secure, redirectAll: settings.httpsRedirect, random: &random)
        switch admission {
        case .redirect:
            let location = Self.redirectLocation(host: header, uri: request.uri, httpsPort: settings.httpsPort)
            return .answer(.redirect(service: name, location: location))
        case .maintenance:
            return .answer(.maintenance(service: name))
        case .noBackend:
            return .answer(.noBackend(service: name))
        case .placed(let placed):
            connections[id] = ConnectionState(
                service: name, generation: placed.generation, serviceIndex: index, layout: serviceLayout,
                key: request.key, backend: placed.backend, isRequest: true)
            return .connect(placed.target)
        }
    }

    mutating func requestFinished(_ id: ConnectionID, _ outcome: RequestOutcome) {
        requestServed(id, sent: 0, received: 0, outcome)
    }

    /// An HTTP request placed by the model ended after moving `sent` bytes
    /// to its backend and `received` from it since the last report: the same
    /// as handling `.bytesTransferred`, then `.requestFinished`, with one
    /// lookup, for the drivers' hot path.
    public mutating func requestServed(_ id: ConnectionID, sent: Int, received: Int, _ outcome: RequestOutcome) {
        guard let slot = connections.index(forKey: id) else { return }
        let request = connections.remove(at: slot).value
        guard request.isRequest else {
            // A TCP connection's id: it stays open; only its bytes count.
            connections[id] = request
            bytesTransferred(id, sent: sent, received: received)
            return
        }
        finish(request, outcome, sent: sent, received: received)
    }

    /// Counts the end of a request, and its last bytes if a backend took it
    /// (as `.bytesTransferred` counts only on an established connection).
    mutating func finish(_ request: ConnectionState, _ outcome: RequestOutcome, sent: Int = 0, received: Int = 0) {
        let failed: Bool
        let status: Int?
        switch outcome {
        case .responded(let s):
            (failed, status) = (false, s)
        case .failed(let s, _):
            (failed, status) = (true, s)
        case .clientGone:
            (failed, status) = (false, nil)
        }
        if request.established {
            updateCounters(request) {
                $0.sent += sent
                $0.received += received
                $0.httpActive -= 1
                if failed { $0.httpErrors += 1 }
                if let status { $0.httpResponses.count(status) }
            }
        } else {
            updateOwn(request) {
                $0.httpActive -= 1
                $0.httpConnections += 1
                if failed { $0.httpErrors += 1 }
                if let status { $0.httpResponses.count(status) }
            }
        }
    }

    /// `https://HOST[:PORT]/URI`: the request's host without its port, the
    /// https listener's port unless it is 443, and the path and query.
    static func redirectLocation(host: String, uri: String, httpsPort: Int?) -> String {
        var name = Substring(host)
        if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
            name = name[...close]
        } else if let colon = name.lastIndex(of: ":") {
            name = name[..<colon]
        }
        var path = Substring(uri)
        if let scheme = path.firstRange(of: "://") {  // absolute form: keep from the path on
            let rest = path[scheme.upperBound...]
            path = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if !path.hasPrefix("/") { path = "/" + path }
        let port = httpsPort.map { $0 == 443 ? "" : ":\($0)" } ?? ""
        return "https://\(name)\(port)\(path)"
    }
}
