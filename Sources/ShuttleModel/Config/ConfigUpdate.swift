/// Which of a service update's fields were present in its JSON. Numbers and
/// strings need no flag (zero or empty means "keep"); lists and booleans do,
/// since an empty list or `false` is a value a user may mean.
public struct ServiceFields: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let httpsRedirect = ServiceFields(rawValue: 1 << 0)
    public static let maintenanceMode = ServiceFields(rawValue: 1 << 1)
    public static let virtualHosts = ServiceFields(rawValue: 1 << 2)
    public static let errorPages = ServiceFields(rawValue: 1 << 3)
    public static let backends = ServiceFields(rawValue: 1 << 4)
    public static let all: ServiceFields = [.httpsRedirect, .maintenanceMode, .virtualHosts, .errorPages, .backends]
}

/// A service as an update names it: its values and which optional fields
/// the update carries (see the merge rules in `Merge.swift`).
public struct ServiceUpdate: Equatable, Hashable, Sendable {
    public var service: ServiceConfig
    public var present: ServiceFields

    /// An update that carries every field: the service as given replaces the
    /// current one's lists and flags.
    public init(_ service: ServiceConfig, present: ServiceFields = .all) {
        self.service = service
        self.present = present
    }
}

/// A whole-config update (POST/PUT `/_config`): global values and services
/// to add or merge. It removes nothing.
public struct ConfigUpdate: Equatable, Hashable, Sendable {
    /// Global values; its `services` are ignored in favour of `services` below.
    public var global: Config
    /// Whether `https-redirect` was present at the top level.
    public var httpsRedirectPresent: Bool
    public var services: [ServiceUpdate]

    public init(global: Config, httpsRedirectPresent: Bool = true, services: [ServiceUpdate]) {
        var g = global
        g.services = []
        self.global = g
        self.httpsRedirectPresent = httpsRedirectPresent
        self.services = services
    }

    /// An update carrying every field of `config`.
    public init(_ config: Config) {
        self.init(global: config, services: config.services.map { ServiceUpdate($0) })
    }

    /// The config this update describes on its own, as a config file is read.
    public var config: Config {
        var c = global
        c.services = services.map(\.service)
        return c
    }
}
