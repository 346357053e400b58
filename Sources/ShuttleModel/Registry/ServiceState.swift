/// Counters of one backend, or of a service's own traffic.
public struct Counters: Equatable, Hashable, Sendable {
    /// Bytes sent to backends.
    public var sent = 0
    /// Bytes received from backends.
    public var received = 0
    public var errors = 0
    /// Connections established, ever.
    public var connections = 0
    /// Connections open now.
    public var active = 0
    public var httpConnections = 0
    public var httpActive = 0
    public var httpErrors = 0
    /// HTTP responses by status class: index 0 for 1xx … 4 for 5xx.
    public var httpResponses = ResponseClasses()

    public init() {}

    public static func + (a: Counters, b: Counters) -> Counters {
        var c = a
        c.sent += b.sent
        c.received += b.received
        c.errors += b.errors
        c.connections += b.connections
        c.active += b.active
        c.httpConnections += b.httpConnections
        c.httpActive += b.httpActive
        c.httpErrors += b.httpErrors
        c.httpResponses = c.httpResponses + b.httpResponses
        return c
    }
}

/// Counts of HTTP responses by status class, without an allocation.
public struct ResponseClasses: Equatable, Hashable, Sendable {
    public var informational = 0, success = 0, redirection = 0, clientError = 0, serverError = 0

    public init() {}

    /// Counts one response of this status.
    public mutating func count(_ status: Int) {
        switch status {
        case ..<200: informational += 1
        case 200..<300: success += 1
        case 300..<400: redirection += 1
        case 400..<500: clientError += 1
        default: serverError += 1
        }
    }

    /// (class label, count), for metrics.
    public var byClass: [(String, Int)] {
        [("1xx", informational), ("2xx", success), ("3xx", redirection), ("4xx", clientError), ("5xx", serverError)]
    }

    static func + (a: ResponseClasses, b: ResponseClasses) -> ResponseClasses {
        var c = a
        c.informational += b.informational
        c.success += b.success
        c.redirection += b.redirection
        c.clientError += b.clientError
        c.serverError += b.serverError
        return c
    }
}

/// A backend in the registry: its config, health and counters.
struct BackendState: BalancedBackend, Sendable, Equatable {
    let id: BackendID
    var config: BackendConfig
    var health = HealthState()
    var counters = Counters()
    /// The health check running for it, if any.
    var check: HealthCheck?

    var isUp: Bool { health.isUp }
    var weight: Int { config.effectiveWeight }
    var active: Int { counters.active }
    var name: String { config.name }
}

/// A service in the registry.
struct ServiceState: Sendable {
    /// Tells apart a service from a later one of the same name, so that the
    /// connections of a removed service never count on its successor.
    let generation: UInt64
    var config: ServiceConfig
    var settings: ServiceSettings
    var listener: Listener?
    /// Sorted by name, like the config.
    var backends: [BackendState] = []
    var balancer = Balancer()
    /// Its own counters: connections that found no backend, and everything
    /// of backends that were removed or replaced.
    var own = Counters()

    func index(of id: BackendID) -> Int? { backends.firstIndex { $0.id == id } }

    // The registry's hot path reaches a service through these mutating
    // methods, called on `services.values[index]`: a mutating call changes
    // the state where it is. Reading `services[name]` or
    // `services.values[index]` instead copies the whole state (Dictionary
    // has no borrowing read), a retain and a release for each of its fields
    // on every connection and request.

    /// A new connection or request placed on a backend.
    struct Placed {
        var backend: BackendID
        var generation: UInt64
        var target: BackendTarget
    }

    /// The balancer's first choice for a new connection or request; nil
    /// if no backend is up.
    mutating func place(key: BalanceKey, random: inout SeededGenerator, forRequest: Bool = false) -> Placed? {
        guard let first = balancer.choose(settings.balance, backends, key: key, random: &random) else { return nil }
        return Placed(backend: backends[first].id, generation: generation, target: target(at: first, forRequest: forRequest))
    }

    /// What becomes of an HTTP request routed to this service.
    enum Admission {
        /// To HTTPS: plain HTTP, and this service or the proxy redirects.
        case redirect
        case maintenance
        case noBackend
        case placed(Placed)
    }

    /// Redirects, answers for maintenance, or places an HTTP request;
    /// counts it on the service's own counters until a backend takes it.
    mutating func admit(
        key: BalanceKey, secure: Bool, redirectAll: Bool, random: inout SeededGenerator
    ) -> Admission {
        if !secure && (redirectAll || settings.httpsRedirect) {
            own.httpConnections += 1
            own.httpResponses.count(301)
            return .redirect
        }
        if config.maintenanceMode {
            own.httpConnections += 1
            own.httpResponses.count(503)
            return .maintenance
        }
        guard let placed = place(key: key, random: &random, forRequest: true) else {
            own.httpConnections += 1
            own.httpErrors += 1
            own.httpResponses.count(503)
            return .noBackend
        }
        own.httpActive += 1
        return .placed(placed)
    }

    /// Counts on the backend's counters if it is still here, else on the
    /// service's own, if the connection is of this service (`generation`).
    mutating func count(generation: UInt64, backend: BackendID, _ update: (inout Counters) -> Void) {
        guard generation == self.generation else { return }
        if let i = index(of: backend) {
            update(&backends[i].counters)
        } else {
            update(&own)
        }
    }

    /// Counts on the service's own counters, if the connection is of this service.
    mutating func countOwn(generation: UInt64, _ update: (inout Counters) -> Void) {
        guard generation == self.generation else { return }
        update(&own)
    }

    var hasBackendUp: Bool { backends.contains { $0.isUp } }

    /// Where to connect to `backends[index]`; an HTTP request (`forRequest`)
    /// always has a time limit for its answer to start. Its fields are read
    /// where they are: a copy of the backend's state costs a retain and a
    /// release of each of its strings, on every connection.
    func target(at index: Int, forRequest: Bool = false) -> BackendTarget {
        let serverTimeout =
            forRequest && settings.serverTimeout == 0 ? Defaults.httpServerTimeout : settings.serverTimeout
        return BackendTarget(
            id: backends[index].id, service: config.name, name: backends[index].config.name,
            address: backends[index].config.address, network: backends[index].config.effectiveNetwork,
            connectTimeout: settings.connectTimeout, clientTimeout: settings.clientTimeout,
            serverTimeout: serverTimeout)
    }

    func healthCheck(for backend: BackendState) -> HealthCheck? {
        guard !backend.config.checkAddress.isEmpty else { return nil }
        return HealthCheck(
            backend: backend.id, service: config.name, name: backend.config.name,
            address: backend.config.checkAddress, interval: settings.checkInterval, timeout: settings.checkTimeout)
    }
}

/// A client connection the model is placing or has placed.
struct ConnectionState: Sendable {
    var service: String
    var generation: UInt64
    /// Where `service` was in the registry's table when the connection was
    /// placed, good while `layout` is the registry's (`Registry.serviceIndex`).
    var serviceIndex: [String: ServiceState].Index
    var layout: UInt64
    var key: BalanceKey
    var backend: BackendID
    /// Backends tried before the current one: empty until a connect fails,
    /// so that placing a connection allocates nothing here.
    var earlier: [BackendID] = []
    /// Connected (TCP, UDP) or handed to a backend connection (HTTP).
    var established = false
    /// An HTTP request rather than a TCP connection or UDP flow.
    var isRequest = false

    /// Whether `id` was tried for this connection, the current backend included.
    func tried(_ id: BackendID) -> Bool { id == backend || earlier.contains(id) }
}
