/// JSON coding of the model's events and actions, for recordings (`-record`)
/// and the simulator's scenario files: one flat object per value with a
/// `kind` naming the case. Identifiers are plain numbers; configs use the
/// original's JSON. Decoding gives back exactly the value that was encoded,
/// so that a replay feeds the model what the driver fed it.

/// The field names of the recording format.
enum RecordKey: String, CodingKey {
    case kind, request, command, listener, address, reason, backend, passed, connection, key, sent, received
    case instant, update, name, service, config, global, httpsRedirectPresent = "https_redirect_present"
    case services, present, id, network, interval, timeout, target, connectTimeout = "connect_timeout"
    case clientTimeout = "client_timeout", serverTimeout = "server_timeout", lastError = "last_error"
    case reply, problems, message, isUp = "is_up", host, hostFields = "host_fields", uri, isTLS = "tls"
    case forwardedProto = "forwarded_proto"
    case answer, location, status, outcome, httpsRedirect = "https_redirect", httpsPort = "https_port"
}

/// Thrown when a recording names a case this build does not know.
struct UnknownKind: Error, CustomStringConvertible {
    var what: String
    var kind: String
    var description: String { "unknown \(what) kind \"\(kind)\"" }
}

extension KeyedDecodingContainer where K == RecordKey {
    fileprivate func raw(_ key: RecordKey) throws -> UInt64 { try decode(UInt64.self, forKey: key) }
    fileprivate func string(_ key: RecordKey) throws -> String { try decode(String.self, forKey: key) }
    fileprivate func int(_ key: RecordKey) throws -> Int { try decode(Int.self, forKey: key) }
}

extension Event: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        switch self {
        case .admin(let id, let command):
            try c.encode("admin", forKey: .kind)
            try c.encode(id.raw, forKey: .request)
            try c.encode(command, forKey: .command)
        case .listenerBound(let id, let address):
            try c.encode("listenerBound", forKey: .kind)
            try c.encode(id.raw, forKey: .listener)
            try c.encode(address, forKey: .address)
        case .listenerFailed(let id, let reason):
            try c.encode("listenerFailed", forKey: .kind)
            try c.encode(id.raw, forKey: .listener)
            try c.encode(reason, forKey: .reason)
        case .checkResult(let id, let passed):
            try c.encode("checkResult", forKey: .kind)
            try c.encode(id.raw, forKey: .backend)
            try c.encode(passed, forKey: .passed)
        case .clientConnected(let id, let listener, let key):
            try c.encode("clientConnected", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(listener.raw, forKey: .listener)
            try c.encode(key.value, forKey: .key)
        case .backendConnected(let id):
            try c.encode("backendConnected", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
        case .backendConnectFailed(let id, let reason):
            try c.encode("backendConnectFailed", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(reason, forKey: .reason)
        case .bytesTransferred(let id, let sent, let received):
            try c.encode("bytesTransferred", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(sent, forKey: .sent)
            try c.encode(received, forKey: .received)
        case .connectionClosed(let id):
            try c.encode("connectionClosed", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
        case .requestReceived(let id, let request):
            try c.encode("requestReceived", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(request, forKey: .request)
        case .requestFinished(let id, let outcome):
            try c.encode("requestFinished", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(outcome, forKey: .outcome)
        case .timeAdvanced(let instant):
            try c.encode("timeAdvanced", forKey: .kind)
            try c.encode(instant.nanoseconds, forKey: .instant)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        let kind = try c.string(.kind)
        switch kind {
        case "admin":
            self = .admin(RequestID(try c.raw(.request)), try c.decode(AdminCommand.self, forKey: .command))
        case "listenerBound":
            self = .listenerBound(ListenerID(try c.raw(.listener)), address: try c.string(.address))
        case "listenerFailed":
            self = .listenerFailed(ListenerID(try c.raw(.listener)), reason: try c.string(.reason))
        case "checkResult":
            self = .checkResult(BackendID(try c.raw(.backend)), passed: try c.decode(Bool.self, forKey: .passed))
        case "clientConnected":
            self = .clientConnected(
                ConnectionID(try c.raw(.connection)), listener: ListenerID(try c.raw(.listener)),
                key: BalanceKey(try c.raw(.key)))
        case "backendConnected":
            self = .backendConnected(ConnectionID(try c.raw(.connection)))
        case "backendConnectFailed":
            self = .backendConnectFailed(ConnectionID(try c.raw(.connection)), reason: try c.string(.reason))
        case "bytesTransferred":
            self = .bytesTransferred(
                ConnectionID(try c.raw(.connection)), sent: try c.int(.sent), received: try c.int(.received))
        case "connectionClosed":
            self = .connectionClosed(ConnectionID(try c.raw(.connection)))
        case "requestReceived":
            self = .requestReceived(ConnectionID(try c.raw(.connection)), try c.decode(HTTPRequest.self, forKey: .request))
        case "requestFinished":
            self = .requestFinished(
                ConnectionID(try c.raw(.connection)), try c.decode(RequestOutcome.self, forKey: .outcome))
        case "timeAdvanced":
            self = .timeAdvanced(Instant(nanoseconds: try c.raw(.instant)))
        default:
            throw UnknownKind(what: "event", kind: kind)
        }
    }
}

extension AdminCommand: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        switch self {
        case .updateConfig(let update):
            try c.encode("updateConfig", forKey: .kind)
            try c.encode(RecordedConfigUpdate(update), forKey: .update)
        case .upsertService(let name, let update):
            try c.encode("upsertService", forKey: .kind)
            try c.encode(name, forKey: .name)
            try c.encode(RecordedServiceUpdate(update), forKey: .update)
        case .removeService(let name):
            try c.encode("removeService", forKey: .kind)
            try c.encode(name, forKey: .name)
        case .upsertBackend(let service, let name, let backend):
            try c.encode("upsertBackend", forKey: .kind)
            try c.encode(service, forKey: .service)
            try c.encode(name, forKey: .name)
            try c.encode(backend, forKey: .backend)
        case .removeBackend(let service, let name):
            try c.encode("removeBackend", forKey: .kind)
            try c.encode(service, forKey: .service)
            try c.encode(name, forKey: .name)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        let kind = try c.string(.kind)
        switch kind {
        case "updateConfig":
            self = .updateConfig(try c.decode(RecordedConfigUpdate.self, forKey: .update).value)
        case "upsertService":
            self = .upsertService(
                name: try c.string(.name), try c.decode(RecordedServiceUpdate.self, forKey: .update).value)
        case "removeService":
            self = .removeService(name: try c.string(.name))
        case "upsertBackend":
            self = .upsertBackend(
                service: try c.string(.service), name: try c.string(.name),
                try c.decode(BackendConfig.self, forKey: .backend))
        case "removeBackend":
            self = .removeBackend(service: try c.string(.service), name: try c.string(.name))
        default:
            throw UnknownKind(what: "admin command", kind: kind)
        }
    }
}

/// A `ConfigUpdate` with its presence flags, which the original's JSON
/// carries only as the presence of keys.
struct RecordedConfigUpdate: Codable {
    var value: ConfigUpdate

    init(_ value: ConfigUpdate) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        try c.encode(value.global, forKey: .global)
        try c.encode(value.httpsRedirectPresent, forKey: .httpsRedirectPresent)
        try c.encode(value.services.map(RecordedServiceUpdate.init), forKey: .services)
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        value = ConfigUpdate(
            global: try c.decode(Config.self, forKey: .global),
            httpsRedirectPresent: try c.decode(Bool.self, forKey: .httpsRedirectPresent),
            services: try c.decode([RecordedServiceUpdate].self, forKey: .services).map(\.value))
    }
}

/// A `ServiceUpdate` with its presence flags by name.
struct RecordedServiceUpdate: Codable {
    var value: ServiceUpdate

    init(_ value: ServiceUpdate) { self.value = value }

    static let names: [(String, ServiceFields)] = [
        ("https-redirect", .httpsRedirect), ("maintenance_mode", .maintenanceMode),
        ("virtual_hosts", .virtualHosts), ("error_pages", .errorPages), ("backends", .backends),
    ]

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        try c.encode(value.service, forKey: .service)
        try c.encode(Self.names.filter { value.present.contains($0.1) }.map(\.0), forKey: .present)
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        var present: ServiceFields = []
        for name in try c.decode([String].self, forKey: .present) {
            guard let field = Self.names.first(where: { $0.0 == name }) else {
                throw UnknownKind(what: "service field", kind: name)
            }
            present.insert(field.1)
        }
        value = ServiceUpdate(try c.decode(ServiceConfig.self, forKey: .service), present: present)
    }
}

extension Action: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        switch self {
        case .bindListener(let listener):
            try c.encode("bindListener", forKey: .kind)
            try c.encode(listener, forKey: .listener)
        case .closeListener(let id):
            try c.encode("closeListener", forKey: .kind)
            try c.encode(id.raw, forKey: .listener)
        case .startHealthCheck(let check):
            try c.encode("startHealthCheck", forKey: .kind)
            try c.encode(check.backend.raw, forKey: .backend)
            try c.encode(check.service, forKey: .service)
            try c.encode(check.name, forKey: .name)
            try c.encode(check.address, forKey: .address)
            try c.encode(check.interval, forKey: .interval)
            try c.encode(check.timeout, forKey: .timeout)
        case .stopHealthCheck(let id):
            try c.encode("stopHealthCheck", forKey: .kind)
            try c.encode(id.raw, forKey: .backend)
        case .retireBackend(let id):
            try c.encode("retireBackend", forKey: .kind)
            try c.encode(id.raw, forKey: .backend)
        case .persist(let config):
            try c.encode("persist", forKey: .kind)
            try c.encode(config, forKey: .config)
        case .reply(let id, let reply):
            try c.encode("reply", forKey: .kind)
            try c.encode(id.raw, forKey: .request)
            try c.encode(reply, forKey: .reply)
        case .connectBackend(let id, let target):
            try c.encode("connectBackend", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(target, forKey: .target)
        case .closeClient(let id, let reason):
            try c.encode("closeClient", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(reason, forKey: .reason)
        case .answerRequest(let id, let answer):
            try c.encode("answerRequest", forKey: .kind)
            try c.encode(id.raw, forKey: .connection)
            try c.encode(answer, forKey: .answer)
        case .backendHealthChanged(let id, let service, let backend, let isUp):
            try c.encode("backendHealthChanged", forKey: .kind)
            try c.encode(id.raw, forKey: .backend)
            try c.encode(service, forKey: .service)
            try c.encode(backend, forKey: .name)
            try c.encode(isUp, forKey: .isUp)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        let kind = try c.string(.kind)
        switch kind {
        case "bindListener":
            self = .bindListener(try c.decode(Listener.self, forKey: .listener))
        case "closeListener":
            self = .closeListener(ListenerID(try c.raw(.listener)))
        case "startHealthCheck":
            self = .startHealthCheck(
                HealthCheck(
                    backend: BackendID(try c.raw(.backend)), service: try c.string(.service), name: try c.string(.name),
                    address: try c.string(.address), interval: try c.int(.interval), timeout: try c.int(.timeout)))
        case "stopHealthCheck":
            self = .stopHealthCheck(BackendID(try c.raw(.backend)))
        case "retireBackend":
            self = .retireBackend(BackendID(try c.raw(.backend)))
        case "persist":
            self = .persist(try c.decode(Config.self, forKey: .config))
        case "reply":
            self = .reply(RequestID(try c.raw(.request)), try c.decode(AdminReply.self, forKey: .reply))
        case "connectBackend":
            self = .connectBackend(ConnectionID(try c.raw(.connection)), try c.decode(BackendTarget.self, forKey: .target))
        case "closeClient":
            self = .closeClient(ConnectionID(try c.raw(.connection)), try c.decode(CloseReason.self, forKey: .reason))
        case "answerRequest":
            self = .answerRequest(ConnectionID(try c.raw(.connection)), try c.decode(HTTPAnswer.self, forKey: .answer))
        case "backendHealthChanged":
            self = .backendHealthChanged(
                BackendID(try c.raw(.backend)), service: try c.string(.service), backend: try c.string(.name),
                isUp: try c.decode(Bool.self, forKey: .isUp))
        default:
            throw UnknownKind(what: "action", kind: kind)
        }
    }
}

extension Listener: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        try c.encode(id.raw, forKey: .id)
        try c.encode(service, forKey: .service)
        try c.encode(address, forKey: .address)
        try c.encode(network, forKey: .network)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        self.init(
            id: ListenerID(try c.raw(.id)), service: try c.string(.service), address: try c.string(.address),
            network: try c.decode(Network.self, forKey: .network))
    }
}

extension BackendTarget: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        try c.encode(id.raw, forKey: .id)
        try c.encode(service, forKey: .service)
        try c.encode(name, forKey: .name)
        try c.encode(address, forKey: .address)
        try c.encode(network, forKey: .network)
        try c.encode(connectTimeout, forKey: .connectTimeout)
        try c.encode(clientTimeout, forKey: .clientTimeout)
        try c.encode(serverTimeout, forKey: .serverTimeout)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        self.init(
            id: BackendID(try c.raw(.id)), service: try c.string(.service), name: try c.string(.name),
            address: try c.string(.address), network: try c.decode(Network.self, forKey: .network),
            connectTimeout: try c.int(.connectTimeout), clientTimeout: try c.int(.clientTimeout),
            serverTimeout: try c.int(.serverTimeout))
    }
}

extension CloseReason: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        switch self {
        case .noService:
            try c.encode("noService", forKey: .kind)
        case .noBackend(let service):
            try c.encode("noBackend", forKey: .kind)
            try c.encode(service, forKey: .service)
        case .allBackendsFailed(let service, let lastError):
            try c.encode("allBackendsFailed", forKey: .kind)
            try c.encode(service, forKey: .service)
            try c.encode(lastError, forKey: .lastError)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        let kind = try c.string(.kind)
        switch kind {
        case "noService": self = .noService
        case "noBackend": self = .noBackend(service: try c.string(.service))
        case "allBackendsFailed":
            self = .allBackendsFailed(service: try c.string(.service), lastError: try c.string(.lastError))
        default: throw UnknownKind(what: "close reason", kind: kind)
        }
    }
}

extension AdminReply: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        switch self {
        case .applied(let config):
            try c.encode("applied", forKey: .kind)
            try c.encode(config, forKey: .config)
        case .rejected(let problems):
            try c.encode("rejected", forKey: .kind)
            try c.encode(problems, forKey: .problems)
        case .notFound(let message):
            try c.encode("notFound", forKey: .kind)
            try c.encode(message, forKey: .message)
        case .bindFailed(let service, let address, let network, let reason):
            try c.encode("bindFailed", forKey: .kind)
            try c.encode(service, forKey: .service)
            try c.encode(address, forKey: .address)
            try c.encode(network, forKey: .network)
            try c.encode(reason, forKey: .reason)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        let kind = try c.string(.kind)
        switch kind {
        case "applied": self = .applied(try c.decode(Config.self, forKey: .config))
        case "rejected": self = .rejected(try c.decode([ConfigProblem].self, forKey: .problems))
        case "notFound": self = .notFound(try c.string(.message))
        case "bindFailed":
            self = .bindFailed(
                service: try c.string(.service), address: try c.string(.address),
                network: try c.decode(Network.self, forKey: .network), reason: try c.string(.reason))
        default: throw UnknownKind(what: "admin reply", kind: kind)
        }
    }
}

extension HTTPRequest: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        try c.encodeIfPresent(host, forKey: .host)
        // Written only when unusual: records of single-Host requests stay as they were.
        if hostFields != (host == nil ? 0 : 1) { try c.encode(hostFields, forKey: .hostFields) }
        try c.encode(uri, forKey: .uri)
        try c.encode(isTLS, forKey: .isTLS)
        try c.encodeIfPresent(forwardedProto, forKey: .forwardedProto)
        try c.encode(key.value, forKey: .key)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        self.init(
            host: try c.decodeIfPresent(String.self, forKey: .host),
            hostFields: try c.decodeIfPresent(Int.self, forKey: .hostFields), uri: try c.string(.uri),
            isTLS: try c.decode(Bool.self, forKey: .isTLS),
            forwardedProto: try c.decodeIfPresent(String.self, forKey: .forwardedProto),
            key: BalanceKey(try c.raw(.key)))
    }
}

extension HTTPAnswer: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        switch self {
        case .badRequest(let reason):
            try c.encode("badRequest", forKey: .kind)
            try c.encode(reason, forKey: .reason)
        case .unknownHost(let host):
            try c.encode("unknownHost", forKey: .kind)
            try c.encode(host, forKey: .host)
        case .redirect(let service, let location):
            try c.encode("redirect", forKey: .kind)
            try c.encode(service, forKey: .service)
            try c.encode(location, forKey: .location)
        case .maintenance(let service):
            try c.encode("maintenance", forKey: .kind)
            try c.encode(service, forKey: .service)
        case .noBackend(let service):
            try c.encode("noBackend", forKey: .kind)
            try c.encode(service, forKey: .service)
        case .allBackendsFailed(let service, let lastError):
            try c.encode("allBackendsFailed", forKey: .kind)
            try c.encode(service, forKey: .service)
            try c.encode(lastError, forKey: .lastError)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        let kind = try c.string(.kind)
        switch kind {
        case "badRequest": self = .badRequest(reason: try c.string(.reason))
        case "unknownHost": self = .unknownHost(try c.string(.host))
        case "redirect": self = .redirect(service: try c.string(.service), location: try c.string(.location))
        case "maintenance": self = .maintenance(service: try c.string(.service))
        case "noBackend": self = .noBackend(service: try c.string(.service))
        case "allBackendsFailed":
            self = .allBackendsFailed(service: try c.string(.service), lastError: try c.string(.lastError))
        default: throw UnknownKind(what: "HTTP answer", kind: kind)
        }
    }
}

extension RequestOutcome: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        switch self {
        case .responded(let status):
            try c.encode("responded", forKey: .kind)
            try c.encode(status, forKey: .status)
        case .failed(let status, let reason):
            try c.encode("failed", forKey: .kind)
            try c.encode(status, forKey: .status)
            try c.encode(reason, forKey: .reason)
        case .clientGone:
            try c.encode("clientGone", forKey: .kind)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        let kind = try c.string(.kind)
        switch kind {
        case "responded": self = .responded(status: try c.int(.status))
        case "failed": self = .failed(status: try c.int(.status), reason: try c.string(.reason))
        case "clientGone": self = .clientGone
        default: throw UnknownKind(what: "request outcome", kind: kind)
        }
    }
}

extension ProxySettings: Codable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RecordKey.self)
        try c.encode(httpsRedirect, forKey: .httpsRedirect)
        try c.encodeIfPresent(httpsPort, forKey: .httpsPort)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: RecordKey.self)
        self.init(
            httpsRedirect: try c.decodeIfPresent(Bool.self, forKey: .httpsRedirect) ?? false,
            httpsPort: try c.decodeIfPresent(Int.self, forKey: .httpsPort))
    }
}
