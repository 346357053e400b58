import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1
import ShuttleModel

/// The answer of `/_health`.
struct HealthBody: Encodable {
    var status: String
}

/// The answer to a certificate reload.
struct CertificateReloadBody: Encodable {
    /// Pair (file) names now served.
    var served: [String]
    /// The names each pair's certificate answers for.
    var names: [String: [String]]
    /// Pairs that failed to load, with the reason.
    var failed: [String: String]
}

/// What to do with a request, decided from its method and path alone,
/// before its body arrives (so that a body nobody wants is not kept).
enum AdminRoute: Sendable {
    /// A known endpoint with a method it takes.
    case call(HTTPMethod, AdminEndpoint)
    /// No such endpoint, or not with this method: answer this.
    case refuse(AdminResponse)

    /// Whether the body is the request's payload (PUT, POST); any other
    /// body is counted against the limit and dropped.
    var needsBody: Bool {
        guard case .call(let method, _) = self else { return false }
        return method == .PUT || method == .POST
    }
}

/// The admin API's endpoints: GETs read the model's state, PUT, POST and
/// DELETE become `AdminCommand`s for the driver. The answers are the model's;
/// the routes only translate HTTP to the model and back.
enum AdminRoutes {
    /// Routes a request by its method and target.
    static func route(method: HTTPMethod, target: String) -> AdminRoute {
        let endpoint: AdminEndpoint
        switch AdminEndpoint.parse(target) {
        case .failure(let error): return .refuse(error.response)
        case .success(let found): endpoint = found
        }
        let allowed = endpoint.allowedMethods
        guard allowed.contains(method) else {
            var response = AdminResponse.error(
                .methodNotAllowed, "method \(method.rawValue) is not allowed on this endpoint")
            response.headers.append(("Allow", allowed.map(\.rawValue).joined(separator: ", ")))
            return .refuse(response)
        }
        return .call(method, endpoint)
    }

    /// Answers a routed request; completes on the driver's control loop.
    static func respond(
        to method: HTTPMethod, _ endpoint: AdminEndpoint, body: ByteBuffer?, driver: Driver
    ) -> EventLoopFuture<AdminResponse> {
        switch method {
        case .GET, .HEAD:
            return driver.control.makeSucceededFuture(read(endpoint, driver: driver))
        case .PUT, .POST:
            return change(endpoint, body: body, driver: driver)
        case .DELETE:
            switch endpoint {
            case .service(let name):
                return submit(.removeService(name: name), warnings: [], driver: driver)
            case .backend(let service, let name):
                return submit(.removeBackend(service: service, name: name), warnings: [], driver: driver)
            case .root, .stats, .config, .serviceStats, .serviceConfig, .reloadCertificates, .health, .metrics:
                break
            }
        default:
            break
        }
        // `route` lets through only the methods an endpoint takes.
        return driver.control.makeSucceededFuture(.error(.methodNotAllowed, "method \(method.rawValue) is not allowed"))
    }

    /// GET: the model's state as it is now.
    static func read(_ endpoint: AdminEndpoint, driver: Driver) -> AdminResponse {
        switch endpoint {
        case .root, .stats:
            let stats = driver.read { $0.stats() }
            // The original answers 503 with no services, so that a load
            // balancer's check of the admin port fails until it is configured.
            return .json(stats.isEmpty ? .serviceUnavailable : .ok, stats)
        case .config:
            return .config(driver.read { $0.config })
        case .service(let name), .serviceStats(let name):
            guard let stats = driver.read({ $0.stats(service: name) }) else { return .notFound(serviceNotFound(name)) }
            return .json(.ok, stats)
        case .serviceConfig(let name):
            guard let service = driver.read({ $0.config.service(named: name) }) else {
                return .notFound(serviceNotFound(name))
            }
            return .json(.ok, service.canonical)
        case .backend(let service, let name):
            let (serviceExists, stats) = driver.read { registry in
                (registry.config.service(named: service) != nil, registry.stats(service: service, backend: name))
            }
            guard serviceExists else { return .notFound(serviceNotFound(service)) }
            guard let stats else { return .notFound("backend \"\(name)\" of service \"\(service)\" not found") }
            return .json(.ok, stats)
        case .reloadCertificates:
            return .error(.methodNotAllowed, "POST reloads the certificates")
        case .health:
            let phase = driver.phase.withLockedValue { $0 }
            return .json(phase == .serving ? .ok : .serviceUnavailable, HealthBody(status: phase.rawValue))
        case .metrics:
            var response = AdminResponse(
                status: .ok, body: Data(driver.metrics.render(driver.read { $0.metricsSnapshot() })))
            response.contentType = "text/plain; version=0.0.4; charset=utf-8"
            return response
        }
    }

    /// PUT, POST: decode the body, then let the model merge it.
    static func change(_ endpoint: AdminEndpoint, body: ByteBuffer?, driver: Driver) -> EventLoopFuture<AdminResponse> {
        let data = body.map { Data($0.readableBytesView) } ?? Data()
        switch endpoint {
        case .root, .config:
            return submit(ConfigCoding.decodeConfig(data), driver: driver) { .updateConfig($0) }
        case .service(let name):
            return submit(ConfigCoding.decodeService(data), driver: driver) { .upsertService(name: name, $0) }
        case .backend(let service, let name):
            return submit(ConfigCoding.decodeBackend(data), driver: driver) {
                .upsertBackend(service: service, name: name, $0)
            }
        case .stats, .serviceStats, .serviceConfig, .health, .metrics:
            return driver.control.makeSucceededFuture(.error(.methodNotAllowed, "this endpoint is read-only"))
        case .reloadCertificates:
            return driver.control.makeSucceededFuture(reloadCertificates(driver: driver))
        }
    }

    /// POST `/_certs/reload`: the names now served and the pairs that failed.
    static func reloadCertificates(driver: Driver) -> AdminResponse {
        guard let reload = driver.certificateReloader.withLockedValue({ $0 }) else {
            return .notFound("no HTTPS listener: there are no certificates to reload")
        }
        do {
            let report = try reload()
            return .json(.ok, CertificateReloadBody(served: report.served, names: report.names, failed: report.failed))
        } catch {
            return .error(.conflict, "certificates not reloaded, the previous ones are still served: \(error)")
        }
    }

    /// Submits a decoded body, or answers 400 with every problem found while
    /// decoding (malformed JSON, values of the wrong type) without asking the model.
    static func submit<Value: Sendable>(
        _ decoded: Decoded<Value>, driver: Driver, command: (Value) -> AdminCommand
    ) -> EventLoopFuture<AdminResponse> {
        log(decoded.warnings, driver: driver)
        guard decoded.problems.isEmpty, let value = decoded.value else {
            var response = AdminResponse.invalid(
                decoded.problems.isEmpty ? [ConfigProblem(path: "", reason: "cannot be decoded")] : decoded.problems)
            response.addWarnings(decoded.warnings)
            return driver.control.makeSucceededFuture(response)
        }
        return submit(command(value), warnings: decoded.warnings, driver: driver)
    }

    static func submit(
        _ command: AdminCommand, warnings: [ConfigProblem], driver: Driver
    ) -> EventLoopFuture<AdminResponse> {
        driver.submit(command).map { reply in
            var response = AdminResponse.reply(reply) { addressPath(ofService: $0, in: command) }
            response.addWarnings(warnings)
            return response
        }
    }

    /// Where the address of `service` sits in the body of `command`, to
    /// point a bind failure at it.
    static func addressPath(ofService service: String, in command: AdminCommand) -> JSONPath? {
        switch command {
        case .updateConfig(let update):
            return update.services.firstIndex { $0.service.name == service }
                .map { JSONPath("services").index($0).key("address") }
        case .upsertService(let name, _):
            return name == service ? JSONPath("address") : nil
        case .removeService, .upsertBackend, .removeBackend:
            return nil
        }
    }

    static func serviceNotFound(_ name: String) -> String { "service \"\(name)\" not found" }

    static func log(_ warnings: [ConfigProblem], driver: Driver) {
        for warning in warnings.prefix(AdminResponse.maxWarnings) {
            driver.logger.warning("admin request: \(warning)")
        }
        if warnings.count > AdminResponse.maxWarnings {
            driver.logger.warning("admin request: \(warnings.count - AdminResponse.maxWarnings) more unknown keys, ignored")
        }
    }
}
