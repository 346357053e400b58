import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import ShuttleModel

/// The metrics of `GET /_metrics`, in the Prometheus text format, through
/// swift-metrics and swift-prometheus.
///
/// Counters the model keeps (connections, bytes, errors, health checks,
/// HTTP requests and responses) are carried into the Prometheus registry
/// when scraped, so they are exactly the numbers of the stats API; what only
/// the runtime can time (backend connects, HTTP requests) is recorded as it
/// happens through swift-metrics timers.
public final class ShuttleMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// For swift-metrics users in this process (`Timer(label:dimensions:factory:)`).
    public let factory: PrometheusMetricsFactory
    /// What was last carried into each counter, by name and labels.
    private let carried = NIOLockedValueBox<[String: CarriedCounter]>([:])

    struct CarriedCounter {
        var counter: Prometheus.Counter
        var value: Int
        var owner: BackendID?
    }

    static let connectBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.connectBuckets
        self.factory = factory
    }

    // MARK: Measured by the runtime

    /// How long a backend took to accept a connection.
    public func recordConnect(service: String, backend: String, nanoseconds: Int64) {
        connectTimer(service: service, backend: backend).recordNanoseconds(nanoseconds)
    }

    /// The timer `recordConnect` records into, for a caller that keeps it.
    func connectTimer(service: String, backend: String) -> CoreMetrics.Timer {
        timer(TimerKey(name: "shuttle_backend_connect_duration_seconds", service: service, backend: backend))
    }

    /// How long an HTTP request took, from its head to the end of its answer.
    public func recordRequest(service: String, nanoseconds: Int64) {
        requestTimer(service: service).recordNanoseconds(nanoseconds)
    }

    /// The timer `recordRequest` records into, for a caller that keeps it.
    func requestTimer(service: String) -> CoreMetrics.Timer {
        timer(TimerKey(name: "shuttle_http_request_duration_seconds", service: service, backend: nil))
    }

    /// Timers are made once per name and labels and kept: making one looks
    /// it up in the registry (labels compared, arrays allocated), too much
    /// for every request. The registry keeps timers of removed services too,
    /// so a kept one is never stale.
    private let timers = NIOLockedValueBox<[TimerKey: CoreMetrics.Timer]>([:])

    struct TimerKey: Hashable {
        var name: String
        var service: String
        var backend: String?
    }

    private func timer(_ key: TimerKey) -> CoreMetrics.Timer {
        if let timer = timers.withLockedValue({ $0[key] }) { return timer }
        var dimensions = [("service", key.service)]
        if let backend = key.backend { dimensions.append(("backend", backend)) }
        let timer = CoreMetrics.Timer(label: key.name, dimensions: dimensions, factory: factory)
        timers.withLockedValue { $0[key] = timer }
        return timer
    }

    // MARK: Scrape

    /// The text exposition, with the model's counters brought up to date.
    public func render(_ snapshot: [ServiceSnapshot]) -> [UInt8] {
        var seen: Set<String> = []
        for service in snapshot {
            let s = [("service", service.name)]
            let t = service.totals
            carry("shuttle_service_connections_total", s, t.connections, &seen)
            carry("shuttle_service_sent_bytes_total", s, t.sent, &seen)
            carry("shuttle_service_received_bytes_total", s, t.received, &seen)
            carry("shuttle_service_errors_total", s, t.errors, &seen)
            carry("shuttle_service_http_requests_total", s, t.httpConnections, &seen)
            carry("shuttle_service_http_errors_total", s, t.httpErrors, &seen)
            for (label, count) in t.httpResponses.byClass {
                carry("shuttle_http_responses_total", s + [("code", label)], count, &seen)
            }
            gauge("shuttle_service_active_connections", s, t.active, &seen)
            gauge("shuttle_service_http_active_requests", s, t.httpActive, &seen)
            for backend in service.backends {
                let b = s + [("backend", backend.name)]
                let c = backend.counters
                let owner = backend.id
                carry("shuttle_backend_connections_total", b, c.connections, &seen, owner: owner)
                carry("shuttle_backend_sent_bytes_total", b, c.sent, &seen, owner: owner)
                carry("shuttle_backend_received_bytes_total", b, c.received, &seen, owner: owner)
                carry("shuttle_backend_errors_total", b, c.errors, &seen, owner: owner)
                carry("shuttle_backend_http_requests_total", b, c.httpConnections, &seen, owner: owner)
                carry(
                    "shuttle_backend_health_checks_total", b + [("result", "success")], backend.checkSuccesses, &seen,
                    owner: owner)
                carry(
                    "shuttle_backend_health_checks_total", b + [("result", "failure")], backend.checkFailures, &seen,
                    owner: owner)
                gauge("shuttle_backend_active_connections", b, c.active, &seen)
                gauge("shuttle_backend_http_active_requests", b, c.httpActive, &seen)
                gauge("shuttle_backend_up", b, backend.isUp ? 1 : 0, &seen)
            }
        }
        forgetAllBut(seen)
        return registry.emitToBuffer()
    }

    private static func key(_ name: String, _ labels: [(String, String)]) -> String {
        name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
    }

    /// Brings a counter up to `value`. A backend replaced since (a new id,
    /// its counts from zero) resets it, which Prometheus reads as a restart.
    private func carry(
        _ name: String, _ labels: [(String, String)], _ value: Int, _ seen: inout Set<String>, owner: BackendID? = nil
    ) {
        let key = Self.key(name, labels)
        seen.insert(key)
        carried.withLockedValue { carried in
            var entry =
                carried[key]
                ?? CarriedCounter(counter: registry.makeCounter(name: name, labels: labels), value: 0, owner: owner)
            if entry.owner != owner || value < entry.value {
                entry.counter.reset()
                entry.value = 0
                entry.owner = owner
            }
            if value > entry.value { entry.counter.increment(by: Int64(value - entry.value)) }
            entry.value = value
            carried[key] = entry
        }
    }

    private func gauge(_ name: String, _ labels: [(String, String)], _ value: Int, _ seen: inout Set<String>) {
        seen.insert(Self.key(name, labels))
        registry.makeGauge(name: name, labels: labels).set(Double(value))
        gaugeLabels.withLockedValue { $0[Self.key(name, labels)] = (name, labels) }
    }

    /// The gauges set at the last scrape, by key, so that those of removed
    /// services and backends can be unregistered.
    private let gaugeLabels = NIOLockedValueBox<[String: (String, [(String, String)])]>([:])

    /// Unregisters the series of services and backends that are gone.
    private func forgetAllBut(_ seen: Set<String>) {
        let goneCounters = carried.withLockedValue { carried -> [Prometheus.Counter] in
            let gone = carried.keys.filter { !seen.contains($0) }
            return gone.compactMap { carried.removeValue(forKey: $0)?.counter }
        }
        for counter in goneCounters { registry.unregisterCounter(counter) }
        let goneGauges = gaugeLabels.withLockedValue { labels -> [(String, [(String, String)])] in
            let gone = labels.keys.filter { !seen.contains($0) }
            return gone.compactMap { labels.removeValue(forKey: $0) }
        }
        for (name, labels) in goneGauges { registry.unregisterGauge(registry.makeGauge(name: name, labels: labels)) }
    }
}
