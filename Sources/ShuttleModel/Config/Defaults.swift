/// The original's defaults, used when neither a service nor the global
/// config sets a value.
public enum Defaults {
    public static let balance = Balance.roundRobin
    public static let checkInterval = 5000
    public static let fall = 2
    public static let rise = 2
    public static let weight = 1
    /// Health-check connect timeout when no `connect_timeout` is set: a check
    /// must not outlive its interval, nor hang for the OS's minutes.
    public static let checkTimeout = 2000
    /// How long an HTTP request waits for its answer to start when no
    /// `server_timeout` is set (the original waited for ever: a silent
    /// backend held its client).
    public static let httpServerTimeout = 60_000
    /// Largest accepted backend weight (the hash ring holds weight x points).
    public static let maximumWeight = 1000
}

/// Transport of a service or backend.
public enum Network: String, Sendable, Hashable, CaseIterable, Codable {
    case tcp, tcp4, tcp6, udp, udp4, udp6

    /// True for the datagram networks.
    public var isDatagram: Bool { self == .udp || self == .udp4 || self == .udp6 }
}

/// The balancing methods. The original has `RR` and `LC`; `P2C` and `HASH`
/// are ours.
public enum Balance: String, Sendable, Hashable, CaseIterable {
    /// Weighted round robin: a backend is chosen `weight` times in a row.
    case roundRobin = "RR"
    /// Fewest active connections first.
    case leastConnections = "LC"
    /// The less loaded of two backends drawn at random.
    case powerOfTwoChoices = "P2C"
    /// Consistent hashing on a key that the caller passes (the client address).
    case consistentHash = "HASH"
}

/// A service's settings with global values and defaults applied: what the
/// service actually runs with.
public struct ServiceSettings: Equatable, Hashable, Sendable {
    public var network: Network
    public var balance: Balance
    public var checkInterval: Int
    public var fall: Int
    public var rise: Int
    public var clientTimeout: Int
    public var serverTimeout: Int
    public var connectTimeout: Int
    public var httpsRedirect: Bool

    /// Resolves `service` against `global`. Unknown names fall back to the
    /// defaults; validation has rejected them before a config is applied.
    public init(service: ServiceConfig, global: Config) {
        func pick(_ own: Int, _ inherited: Int, _ fallback: Int) -> Int {
            own != 0 ? own : (inherited != 0 ? inherited : fallback)
        }
        network = Network(rawValue: service.network.isEmpty ? "tcp" : service.network) ?? .tcp
        let balanceName = service.balance.isEmpty ? global.balance : service.balance
        balance = Balance(rawValue: balanceName) ?? Defaults.balance
        checkInterval = pick(service.checkInterval, global.checkInterval, Defaults.checkInterval)
        fall = pick(service.fall, global.fall, Defaults.fall)
        rise = pick(service.rise, global.rise, Defaults.rise)
        clientTimeout = pick(service.clientTimeout, global.clientTimeout, 0)
        serverTimeout = pick(service.serverTimeout, global.serverTimeout, 0)
        connectTimeout = pick(service.connectTimeout, global.connectTimeout, 0)
        httpsRedirect = service.httpsRedirect || global.httpsRedirect
    }

    /// The timeout of one health-check connect.
    public var checkTimeout: Int {
        let timeout = connectTimeout > 0 ? connectTimeout : Defaults.checkTimeout
        return min(timeout, checkInterval)
    }
}
