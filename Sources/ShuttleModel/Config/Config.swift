/// The configuration of the whole proxy: global defaults and the services.
///
/// This is the JSON of the original shuttle's `/_config`, config and state
/// files, key for key. Values are stored as given: an unset number is 0 and
/// means "inherit the global value, else the default" (see `ServiceSettings`).
public struct Config: Equatable, Hashable, Sendable {
    /// Default balancing method for services that leave theirs unset.
    public var balance: String
    /// Milliseconds between health checks.
    public var checkInterval: Int
    /// Consecutive failed checks that mark a backend down.
    public var fall: Int
    /// Consecutive successful checks that mark a backend up again.
    public var rise: Int
    /// Client inactivity timeout in milliseconds (0: none).
    public var clientTimeout: Int
    /// Backend inactivity timeout in milliseconds (0: none).
    public var serverTimeout: Int
    /// Backend connect timeout in milliseconds (0: none).
    public var connectTimeout: Int
    /// Redirect plain HTTP requests of every virtual host to https.
    public var httpsRedirect: Bool
    /// The services, kept sorted by name once part of the registry.
    public var services: [ServiceConfig]

    public init(
        balance: String = "", checkInterval: Int = 0, fall: Int = 0, rise: Int = 0,
        clientTimeout: Int = 0, serverTimeout: Int = 0, connectTimeout: Int = 0,
        httpsRedirect: Bool = false, services: [ServiceConfig] = []
    ) {
        self.balance = balance
        self.checkInterval = checkInterval
        self.fall = fall
        self.rise = rise
        self.clientTimeout = clientTimeout
        self.serverTimeout = serverTimeout
        self.connectTimeout = connectTimeout
        self.httpsRedirect = httpsRedirect
        self.services = services
    }

    /// The service with this name, if any.
    public func service(named name: String) -> ServiceConfig? {
        services.first { $0.name == name }
    }

    /// The same configuration with services and backends sorted by name, as
    /// it is kept, encoded and compared.
    public var canonical: Config {
        var copy = self
        copy.services = services.map(\.canonical).sorted { $0.name < $1.name }
        return copy
    }
}

/// One listening address proxied to a set of backends.
public struct ServiceConfig: Equatable, Hashable, Sendable {
    public var name: String
    /// Listen address, `ip:port` (`:port` for every interface).
    public var address: String
    /// `tcp`, `tcp4`, `tcp6`, `udp`, `udp4` or `udp6`; empty means `tcp`.
    public var network: String
    public var balance: String
    public var checkInterval: Int
    public var fall: Int
    public var rise: Int
    public var clientTimeout: Int
    public var serverTimeout: Int
    public var connectTimeout: Int
    public var httpsRedirect: Bool
    public var virtualHosts: [String]
    /// Error page URL to the status codes it replaces.
    public var errorPages: [String: [Int]]
    public var backends: [BackendConfig]
    public var maintenanceMode: Bool

    public init(
        name: String = "", address: String = "", network: String = "", balance: String = "",
        checkInterval: Int = 0, fall: Int = 0, rise: Int = 0,
        clientTimeout: Int = 0, serverTimeout: Int = 0, connectTimeout: Int = 0,
        httpsRedirect: Bool = false, virtualHosts: [String] = [], errorPages: [String: [Int]] = [:],
        backends: [BackendConfig] = [], maintenanceMode: Bool = false
    ) {
        self.name = name
        self.address = address
        self.network = network
        self.balance = balance
        self.checkInterval = checkInterval
        self.fall = fall
        self.rise = rise
        self.clientTimeout = clientTimeout
        self.serverTimeout = serverTimeout
        self.connectTimeout = connectTimeout
        self.httpsRedirect = httpsRedirect
        self.virtualHosts = virtualHosts
        self.errorPages = errorPages
        self.backends = backends
        self.maintenanceMode = maintenanceMode
    }

    /// The backend with this name, if any.
    public func backend(named name: String) -> BackendConfig? {
        backends.first { $0.name == name }
    }

    /// Backends sorted by name.
    public var canonical: ServiceConfig {
        var copy = self
        copy.backends.sort { $0.name < $1.name }
        return copy
    }
}

/// One server behind a service.
public struct BackendConfig: Equatable, Hashable, Sendable {
    /// Unique within its service; a path segment of the admin API.
    public var name: String
    /// `host:port` to connect to.
    public var address: String
    /// Empty means `tcp`.
    public var network: String
    /// `host:port` for TCP health checks; empty: no checks, always up.
    public var checkAddress: String
    /// Round-robin weight; 0 means 1.
    public var weight: Int

    public init(name: String = "", address: String = "", network: String = "", checkAddress: String = "", weight: Int = 0) {
        self.name = name
        self.address = address
        self.network = network
        self.checkAddress = checkAddress
        self.weight = weight
    }

    /// Equal once defaults are applied (weight 0 is 1, network "" is tcp), as
    /// the original compares backends: such a backend is kept, not replaced.
    public func isEquivalent(to other: BackendConfig) -> Bool {
        name == other.name && address == other.address && checkAddress == other.checkAddress
            && effectiveWeight == other.effectiveWeight && effectiveNetwork == other.effectiveNetwork
    }

    public var effectiveWeight: Int { weight == 0 ? Defaults.weight : weight }
    /// Read for every connection placed: the usual empty value is not parsed.
    public var effectiveNetwork: Network { network.isEmpty ? .tcp : Network(rawValue: network) ?? .tcp }
}
