/// Maps virtual host names to the services that serve them, and picks one
/// service per request: round robin among those with a backend up; if none
/// is up, still one of them (so that its error page can be served). Exact
/// names beat wildcards; a longer wildcard beats a shorter one.
public struct VirtualHostTable: Sendable, Equatable {
    /// Normalized exact name to service names, sorted.
    var exact: [String: [String]] = [:]
    /// Wildcard suffix (".example.com") to services, longest suffix first.
    var wildcards: [(suffix: String, services: [String])] = []
    /// Round-robin position per name as written in the config.
    var cursors: [String: Int] = [:]

    public init() {}

    public init(_ config: Config) {
        var exact: [String: [String]] = [:]
        var wild: [String: [String]] = [:]
        for service in config.services {
            for name in Set(service.virtualHosts.map(VirtualHostName.normalize)) {
                if name.hasPrefix("*.") {
                    wild[String(name.dropFirst()), default: []].append(service.name)
                } else {
                    exact[name, default: []].append(service.name)
                }
            }
        }
        self.exact = exact.mapValues { $0.sorted() }
        self.wildcards = wild.map { ($0.key, $0.value.sorted()) }
            .sorted { $0.suffix.count != $1.suffix.count ? $0.suffix.count > $1.suffix.count : $0.suffix < $1.suffix }
    }

    public static func == (lhs: VirtualHostTable, rhs: VirtualHostTable) -> Bool {
        lhs.exact == rhs.exact && lhs.cursors == rhs.cursors
            && lhs.wildcards.elementsEqual(rhs.wildcards) { $0.suffix == $1.suffix && $0.services == $1.services }
    }

    /// The services serving `host` (already normalized), and the key of the
    /// entry that matched.
    public func candidates(for host: String) -> (entry: String, services: [String])? {
        if let services = exact[host] { return (host, services) }
        for wildcard in wildcards where host.hasSuffix(wildcard.suffix) && host.count > wildcard.suffix.count {
            return ("*" + wildcard.suffix, wildcard.services)
        }
        return nil
    }

    /// Picks the service for a request to `host` (normalized); `hasBackendUp`
    /// tells which services can serve. Nil when no service serves the name.
    public mutating func route(_ host: String, hasBackendUp: (String) -> Bool) -> String? {
        guard let (entry, services) = candidates(for: host), !services.isEmpty else { return nil }
        // One service, nearly every name: it serves whether or not a backend
        // is up, and its position stays 0 (no check, no cursor to store).
        if services.count == 1 { return services[0] }
        let start = cursors[entry, default: 0] % services.count
        for offset in 0..<services.count {
            let i = (start + offset) % services.count
            if hasBackendUp(services[i]) {
                cursors[entry] = (i + 1) % services.count
                return services[i]
            }
        }
        cursors[entry] = (start + 1) % services.count
        return services[start]
    }

    /// Every name served, as normalized, for listings.
    public var names: [String] {
        (Array(exact.keys) + wildcards.map { "*" + $0.suffix }).sorted()
    }
}
