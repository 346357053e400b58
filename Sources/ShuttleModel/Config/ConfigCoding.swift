import FoundationEssentials

/// The result of decoding a JSON document: the value when the document had
/// the right shape, unknown keys as warnings, and every type error found.
public struct Decoded<Value: Sendable>: Sendable {
    public var value: Value?
    /// Unknown keys: ignored, but worth telling the user about.
    public var warnings: [ConfigProblem]
    /// Malformed JSON and values of the wrong type. When not empty, `value`
    /// must not be applied.
    public var problems: [ConfigProblem]
}

/// JSON coding of configs in the original's format.
public enum ConfigCoding {
    /// Decodes a whole config (a config or state file, or a `/_config` body).
    public static func decodeConfig(_ data: Data) -> Decoded<ConfigUpdate> {
        decode(ConfigUpdate.self, data)
    }

    /// Decodes a service (a `/{service}` body).
    public static func decodeService(_ data: Data) -> Decoded<ServiceUpdate> {
        decode(ServiceUpdate.self, data)
    }

    /// Decodes a backend (a `/{service}/{backend}` body).
    public static func decodeBackend(_ data: Data) -> Decoded<BackendConfig> {
        decode(BackendConfig.self, data)
    }

    /// Indented JSON, services and backends sorted by name: a valid config file.
    public static func encode(_ config: Config) -> Data {
        encodeValue(config.canonical)
    }

    /// Indented JSON with sorted keys, for configs, stats and errors alike.
    public static func encodeValue<T: Encodable>(_ value: T) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Our types encode nothing that can fail (no floats, no non-string keys).
        return (try? encoder.encode(value)) ?? Data("null".utf8)
    }

    static func decode<T: Decodable & Sendable>(_ type: T.Type, _ data: Data) -> Decoded<T> {
        let report = DecodingReport()
        let decoder = JSONDecoder()
        decoder.userInfo[DecodingReport.key] = report
        do {
            let value = try decoder.decode(T.self, from: data)
            return Decoded(value: value, warnings: report.warnings, problems: report.problems)
        } catch let error as DecodingError {
            var problem = ConfigProblem(error)
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                // JSONDecoder does not say where.
                if let where_ = JSONSyntax.firstError(in: data) {
                    problem.reason = "malformed JSON: \(where_)"
                }
            }
            report.problems.append(problem)
        } catch {
            report.problems.append(ConfigProblem(path: "", reason: "malformed JSON: \(error)"))
        }
        return Decoded(value: nil, warnings: report.warnings, problems: report.problems)
    }
}

/// Collects warnings and type errors while decoding, so one pass reports
/// all of them instead of stopping at the first.
final class DecodingReport: @unchecked Sendable {
    static let key = CodingUserInfoKey(rawValue: "shuttle.decodingReport")!
    var warnings: [ConfigProblem] = []
    var problems: [ConfigProblem] = []
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

func renderPath(_ path: [any CodingKey]) -> String {
    var json = JSONPath()
    for key in path {
        if let i = key.intValue { json = json.index(i) } else { json = json.key(key.stringValue) }
    }
    return json.description
}

extension ConfigProblem {
    init(_ error: DecodingError) {
        switch error {
        case .typeMismatch(let type, let context):
            self.init(path: renderPath(context.codingPath), reason: "expected \(describe(type))")
        case .valueNotFound(let type, let context):
            self.init(path: renderPath(context.codingPath), reason: "expected \(describe(type)), got null")
        case .keyNotFound(let key, let context):
            self.init(path: renderPath(context.codingPath + [key]), reason: "is required")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let underlying = context.underlyingError.map { "\($0)" }
                self.init(path: "", reason: "malformed JSON: " + (underlying ?? context.debugDescription))
            } else {
                self.init(path: renderPath(context.codingPath), reason: "invalid value: \(context.debugDescription)")
            }
        @unknown default:
            self.init(path: "", reason: "\(error)")
        }
    }
}

func describe(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type: return "an integer"
    case is String.Type: return "a string"
    case is Bool.Type: return "true or false"
    case is [Int].Type: return "an array of integers"
    case is [String].Type: return "an array of strings"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array") { return "an array" }
        if name.hasPrefix("Dictionary") || name.hasSuffix("Config") || name.hasSuffix("Update") {
            return "an object"
        }
        return name
    }
}

/// Reads the fields of one JSON object leniently: a field of the wrong type
/// is reported and left at its zero value, unknown keys are warned about.
struct LenientObject {
    let container: KeyedDecodingContainer<AnyKey>?
    let report: DecodingReport?
    let path: [any CodingKey]

    init(_ decoder: any Decoder, known: Set<String>) throws {
        report = decoder.userInfo[DecodingReport.key] as? DecodingReport
        path = decoder.codingPath
        do {
            let container = try decoder.container(keyedBy: AnyKey.self)
            self.container = container
            for key in container.allKeys where !known.contains(key.stringValue) {
                let at = JSONPath(renderPath(path)).key(key.stringValue)
                report?.warnings.append(at.problem("unknown key, ignored"))
            }
        } catch let error as DecodingError {
            guard let report else { throw error }
            // `null` or a non-object where an object belongs.
            report.problems.append(JSONPath(renderPath(path)).problem("expected an object"))
            container = nil
        }
    }

    func contains(_ key: String) -> Bool {
        guard let container else { return false }
        return container.contains(AnyKey(key)) && !((try? container.decodeNil(forKey: AnyKey(key))) ?? true)
    }

    func value<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        guard let container else { return nil }
        do {
            return try container.decodeIfPresent(T.self, forKey: AnyKey(key))
        } catch {
            guard let report else { throw error }
            report.problems.append(problem(error, at: JSONPath(renderPath(path)).key(key), expected: T.self))
            return nil
        }
    }

    /// A decoding error as a problem at the field's path. Foundation on Linux
    /// reports a number that does not fit (1.5 or 1e30 for an integer) as a
    /// bare error with no path; it belongs to the field all the same.
    func problem(_ error: any Error, at field: JSONPath, expected: Any.Type) -> ConfigProblem {
        if let error = error as? DecodingError {
            let problem = ConfigProblem(error)
            if !problem.path.isEmpty { return problem }
        }
        return field.problem("expected \(describe(expected))")
    }

    /// An array decoded element by element, so one bad element is reported
    /// with its index and the others still decode.
    func array<T: Decodable>(_ type: T.Type, _ key: String) throws -> [T]? {
        guard let container, contains(key) else { return nil }
        var elements: [T] = []
        do {
            var list = try container.nestedUnkeyedContainer(forKey: AnyKey(key))
            while !list.isAtEnd {
                let index = list.currentIndex
                do {
                    elements.append(try list.decode(T.self))
                } catch {
                    guard let report else { throw error }
                    let at = JSONPath(renderPath(path)).key(key).index(index)
                    report.problems.append(problem(error, at: at, expected: T.self))
                    if list.currentIndex == index { _ = try? list.decode(SkipValue.self) }
                }
            }
        } catch let error as DecodingError {
            guard let report else { throw error }
            report.problems.append(JSONPath(renderPath(path)).key(key).problem("expected an array"))
            return nil
        }
        return elements
    }
}

/// Consumes any JSON value.
struct SkipValue: Decodable {
    init(from decoder: any Decoder) throws {}
}

private enum Keys {
    static let global: Set<String> = [
        "balance", "check_interval", "fall", "rise", "client_timeout", "server_timeout",
        "connect_timeout", "https-redirect", "services",
    ]
    static let service: Set<String> = [
        "name", "address", "network", "balance", "check_interval", "fall", "rise", "client_timeout",
        "server_timeout", "connect_timeout", "https-redirect", "virtual_hosts", "error_pages",
        "backends", "maintenance_mode",
    ]
    static let backend: Set<String> = ["name", "address", "network", "check_address", "weight"]
}

extension ConfigUpdate: Decodable {
    public init(from decoder: any Decoder) throws {
        let o = try LenientObject(decoder, known: Keys.global)
        var global = Config()
        global.balance = try o.value(String.self, "balance") ?? ""
        global.checkInterval = try o.value(Int.self, "check_interval") ?? 0
        global.fall = try o.value(Int.self, "fall") ?? 0
        global.rise = try o.value(Int.self, "rise") ?? 0
        global.clientTimeout = try o.value(Int.self, "client_timeout") ?? 0
        global.serverTimeout = try o.value(Int.self, "server_timeout") ?? 0
        global.connectTimeout = try o.value(Int.self, "connect_timeout") ?? 0
        global.httpsRedirect = try o.value(Bool.self, "https-redirect") ?? false
        self.init(
            global: global,
            httpsRedirectPresent: o.contains("https-redirect"),
            services: try o.array(ServiceUpdate.self, "services") ?? []
        )
    }
}

extension ServiceUpdate: Decodable {
    public init(from decoder: any Decoder) throws {
        let o = try LenientObject(decoder, known: Keys.service)
        var s = ServiceConfig()
        s.name = try o.value(String.self, "name") ?? ""
        s.address = try o.value(String.self, "address") ?? ""
        s.network = try o.value(String.self, "network") ?? ""
        s.balance = try o.value(String.self, "balance") ?? ""
        s.checkInterval = try o.value(Int.self, "check_interval") ?? 0
        s.fall = try o.value(Int.self, "fall") ?? 0
        s.rise = try o.value(Int.self, "rise") ?? 0
        s.clientTimeout = try o.value(Int.self, "client_timeout") ?? 0
        s.serverTimeout = try o.value(Int.self, "server_timeout") ?? 0
        s.connectTimeout = try o.value(Int.self, "connect_timeout") ?? 0
        s.httpsRedirect = try o.value(Bool.self, "https-redirect") ?? false
        s.virtualHosts = try o.array(String.self, "virtual_hosts") ?? []
        s.errorPages = try o.value([String: [Int]].self, "error_pages") ?? [:]
        s.backends = try o.array(BackendConfig.self, "backends") ?? []
        s.maintenanceMode = try o.value(Bool.self, "maintenance_mode") ?? false
        var present: ServiceFields = []
        if o.contains("https-redirect") { present.insert(.httpsRedirect) }
        if o.contains("maintenance_mode") { present.insert(.maintenanceMode) }
        if o.contains("virtual_hosts") { present.insert(.virtualHosts) }
        if o.contains("error_pages") { present.insert(.errorPages) }
        if o.contains("backends") { present.insert(.backends) }
        self.init(s, present: present)
    }
}

extension BackendConfig: Codable {
    public init(from decoder: any Decoder) throws {
        let o = try LenientObject(decoder, known: Keys.backend)
        self.init(
            name: try o.value(String.self, "name") ?? "",
            address: try o.value(String.self, "address") ?? "",
            network: try o.value(String.self, "network") ?? "",
            checkAddress: try o.value(String.self, "check_address") ?? "",
            weight: try o.value(Int.self, "weight") ?? 0
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(address, forKey: AnyKey("address"))
        if !network.isEmpty { try c.encode(network, forKey: AnyKey("network")) }
        try c.encode(checkAddress, forKey: AnyKey("check_address"))
        try c.encode(weight, forKey: AnyKey("weight"))
    }
}

extension ServiceConfig: Codable {
    public init(from decoder: any Decoder) throws {
        self = try ServiceUpdate(from: decoder).service
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(address, forKey: AnyKey("address"))
        if !network.isEmpty { try c.encode(network, forKey: AnyKey("network")) }
        if !balance.isEmpty { try c.encode(balance, forKey: AnyKey("balance")) }
        try c.encode(checkInterval, forKey: AnyKey("check_interval"))
        try c.encode(fall, forKey: AnyKey("fall"))
        try c.encode(rise, forKey: AnyKey("rise"))
        try c.encode(clientTimeout, forKey: AnyKey("client_timeout"))
        try c.encode(serverTimeout, forKey: AnyKey("server_timeout"))
        try c.encode(connectTimeout, forKey: AnyKey("connect_timeout"))
        try c.encode(httpsRedirect, forKey: AnyKey("https-redirect"))
        if !virtualHosts.isEmpty { try c.encode(virtualHosts, forKey: AnyKey("virtual_hosts")) }
        if !errorPages.isEmpty { try c.encode(errorPages, forKey: AnyKey("error_pages")) }
        if !backends.isEmpty { try c.encode(backends, forKey: AnyKey("backends")) }
        try c.encode(maintenanceMode, forKey: AnyKey("maintenance_mode"))
    }
}

extension Config: Codable {
    public init(from decoder: any Decoder) throws {
        self = try ConfigUpdate(from: decoder).config
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        if !balance.isEmpty { try c.encode(balance, forKey: AnyKey("balance")) }
        try c.encode(checkInterval, forKey: AnyKey("check_interval"))
        try c.encode(fall, forKey: AnyKey("fall"))
        try c.encode(rise, forKey: AnyKey("rise"))
        try c.encode(clientTimeout, forKey: AnyKey("client_timeout"))
        try c.encode(serverTimeout, forKey: AnyKey("server_timeout"))
        try c.encode(connectTimeout, forKey: AnyKey("connect_timeout"))
        try c.encode(httpsRedirect, forKey: AnyKey("https-redirect"))
        try c.encode(services, forKey: AnyKey("services"))
    }
}
