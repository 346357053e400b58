/// Checks configs and updates, reporting every problem at once, each with
/// its JSON path.
///
/// Two passes: `check(_:)` looks at an update as the user wrote it (fields
/// and duplicates within the body, paths of the body); `checkMerged` looks
/// at the configuration the update would produce, for what only the whole
/// can tell (a required address, two services on one address), reporting at
/// the path of the body's service involved.
public enum Validation {
    /// Every problem of a complete config, as read from a file.
    public static func validate(_ config: Config) -> [ConfigProblem] {
        let update = ConfigUpdate(config)
        return check(update) + checkMerged(config.canonical, touched: touchedPaths(update), bodies: bodies(update))
    }

    /// Problems of a whole-config update's own fields.
    public static func check(_ update: ConfigUpdate) -> [ConfigProblem] {
        var problems = checkGlobal(update.global)
        let services = JSONPath("services")
        var seen: [String: Int] = [:]
        for (i, s) in update.services.enumerated() {
            let at = services.index(i)
            if s.service.name.isEmpty {
                problems.append(at.key("name").problem("is required"))
            } else if let first = seen[s.service.name] {
                problems.append(at.key("name").problem("\"\(s.service.name)\" is also the name of services[\(first)]"))
            } else {
                seen[s.service.name] = i
            }
            problems += check(s.service, at: at)
        }
        return problems
    }

    /// Where each service of `update` sits in its body, for `checkMerged`.
    public static func touchedPaths(_ update: ConfigUpdate) -> [String: JSONPath] {
        var paths: [String: JSONPath] = [:]
        for (i, s) in update.services.enumerated() where paths[s.service.name] == nil {
            paths[s.service.name] = JSONPath("services").index(i)
        }
        return paths
    }

    /// The services of `update` by name, as given.
    public static func bodies(_ update: ConfigUpdate) -> [String: ServiceConfig] {
        var bodies: [String: ServiceConfig] = [:]
        for s in update.services where bodies[s.service.name] == nil { bodies[s.service.name] = s.service }
        return bodies
    }

    static func checkGlobal(_ global: Config) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        let root = JSONPath()
        if !global.balance.isEmpty, Balance(rawValue: global.balance) == nil {
            problems.append(root.key("balance").problem(unknownBalance(global.balance)))
        }
        problems += nonNegative(
            root,
            [
                ("check_interval", global.checkInterval), ("fall", global.fall), ("rise", global.rise),
                ("client_timeout", global.clientTimeout), ("server_timeout", global.serverTimeout),
                ("connect_timeout", global.connectTimeout),
            ])
        return problems
    }

    /// Problems of one service's own fields, as given (unset fields are fine:
    /// they are inherited or kept).
    public static func check(_ service: ServiceConfig, at path: JSONPath) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if !service.name.isEmpty, let reason = pathSegmentProblem(service.name, what: "service") {
            problems.append(path.key("name").problem(reason))
        }
        if !service.address.isEmpty, case .failure(let error) = HostPort.parse(service.address, listening: true) {
            problems.append(path.key("address").problem("\"\(service.address)\" \(error)"))
        }
        if !service.network.isEmpty, Network(rawValue: service.network) == nil {
            problems.append(path.key("network").problem(unknownNetwork(service.network)))
        }
        if !service.balance.isEmpty, Balance(rawValue: service.balance) == nil {
            problems.append(path.key("balance").problem(unknownBalance(service.balance)))
        }
        problems += nonNegative(
            path,
            [
                ("check_interval", service.checkInterval), ("fall", service.fall), ("rise", service.rise),
                ("client_timeout", service.clientTimeout), ("server_timeout", service.serverTimeout),
                ("connect_timeout", service.connectTimeout),
            ])
        for (i, host) in service.virtualHosts.enumerated() {
            if let reason = VirtualHostName.problem(host) {
                problems.append(path.key("virtual_hosts").index(i).problem(reason))
            }
        }
        for url in service.errorPages.keys.sorted() {
            let at = path.key("error_pages").key(url)
            if let reason = errorPageURLProblem(url) { problems.append(at.problem(reason)) }
            let codes = service.errorPages[url] ?? []
            if codes.isEmpty { problems.append(at.problem("lists no status code")) }
            for (i, code) in codes.enumerated() where !(100...599).contains(code) {
                problems.append(at.index(i).problem("\(code) is not an HTTP status code (100-599)"))
            }
        }
        var seen: [String: Int] = [:]
        for (i, backend) in service.backends.enumerated() {
            let at = path.key("backends").index(i)
            problems += check(backend, at: at)
            guard !backend.name.isEmpty else { continue }
            if let first = seen[backend.name] {
                problems.append(at.key("name").problem("\"\(backend.name)\" is also the name of backends[\(first)]"))
            } else {
                seen[backend.name] = i
            }
        }
        return problems
    }

    /// Problems of one backend's fields. A backend is always given whole.
    public static func check(_ backend: BackendConfig, at path: JSONPath) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if backend.name.isEmpty {
            problems.append(path.key("name").problem("is required"))
        } else if let reason = pathSegmentProblem(backend.name, what: "backend") {
            problems.append(path.key("name").problem(reason))
        }
        if backend.address.isEmpty {
            problems.append(path.key("address").problem("is required"))
        } else if case .failure(let error) = HostPort.parse(backend.address, listening: false) {
            problems.append(path.key("address").problem("\"\(backend.address)\" \(error)"))
        }
        if !backend.network.isEmpty, Network(rawValue: backend.network) == nil {
            problems.append(path.key("network").problem(unknownNetwork(backend.network)))
        }
        if !backend.checkAddress.isEmpty,
            case .failure(let error) = HostPort.parse(backend.checkAddress, listening: false)
        {
            problems.append(path.key("check_address").problem("\"\(backend.checkAddress)\" \(error)"))
        }
        if backend.weight < 0 || backend.weight > Defaults.maximumWeight {
            problems.append(path.key("weight").problem("\(backend.weight) is outside 0-\(Defaults.maximumWeight)"))
        }
        return problems
    }

    /// Problems that only the merged configuration shows, reported for the
    /// services an update touched (the others were valid already). `bodies`
    /// are the services as the update gave them, so that a backend is named
    /// at its index in the body rather than in the sorted result.
    public static func checkMerged(
        _ config: Config, touched: [String: JSONPath], bodies: [String: ServiceConfig] = [:]
    ) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        var listeners: [ListenKey: [String]] = [:]
        for service in config.services {
            if let key = ListenKey(service), key.claimsAddress { listeners[key, default: []].append(service.name) }
        }
        for service in config.services {
            guard let path = touched[service.name] else { continue }
            if service.address.isEmpty {
                problems.append(path.key("address").problem("is required"))
            } else if let key = ListenKey(service), key.claimsAddress,
                let other = listeners[key]?.first(where: { other in
                    // Two services of one body collide once, reported at the later.
                    guard other != service.name else { return false }
                    guard let otherPath = touched[other] else { return true }
                    return position(otherPath) < position(path)
                })
            {
                problems.append(
                    path.key("address").problem(
                        "\(service.address) (\(key.transport)) is already the address of service \"\(other)\""))
            }
            guard let network = Network(rawValue: service.network.isEmpty ? "tcp" : service.network) else { continue }
            let bodyIndex = bodies[service.name].map { body in
                Dictionary(body.backends.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
            }
            let listen = HostPort.parse(service.address, listening: true)
            for backend in service.backends {
                guard let own = Network(rawValue: backend.network.isEmpty ? "tcp" : backend.network) else { continue }
                if own.isDatagram == network.isDatagram {
                    guard case .success(let listen) = listen,
                        case .success(let target) = HostPort.parse(backend.address, listening: false),
                        isListener(listen, reachedAt: target)
                    else { continue }
                    let reason = "is the service's own listen address \(service.address): every connection would loop back into the proxy until it runs out of descriptors"
                    if let i = bodyIndex?[backend.name] {
                        problems.append(path.key("backends").index(i).key("address").problem("\"\(backend.address)\" \(reason)"))
                    } else {
                        problems.append(
                            path.key("address").problem(
                                "\(service.address) is the address of the service's own backend \"\(backend.name)\": every connection would loop back into the proxy"
                            ))
                    }
                    continue
                }
                if let i = bodyIndex?[backend.name] {
                    problems.append(
                        path.key("backends").index(i).key("network").problem(
                            "\(own.rawValue) backend \"\(backend.name)\" cannot serve \(network.rawValue) service \"\(service.name)\""
                        ))
                } else {
                    // A backend the update kept: the service's network changed under it.
                    problems.append(
                        path.key("network").problem(
                            "\(network.rawValue) service \"\(service.name)\" cannot keep \(own.rawValue) backend \"\(backend.name)\""
                        ))
                }
            }
        }
        return problems
    }

    /// Whether connecting to `target` reaches the listener at `listen` on
    /// this machine: the same port, and the same address, or a loopback or
    /// wildcard address when the listener takes every interface. (Only what
    /// the addresses themselves show: a host name other than localhost, or
    /// another local interface's address, is not resolved here.)
    static func isListener(_ listen: HostPort, reachedAt target: HostPort) -> Bool {
        guard listen.port != 0, listen.port == target.port else { return false }
        func isWildcard(_ host: HostPort.Host) -> Bool {
            switch host {
            case .any: return true
            case .ipv4(let ip): return ip == "0.0.0.0"
            case .ipv6(let ip): return ip == "::" || ip == "::0"
            case .name: return false
            }
        }
        func isLoopback(_ host: HostPort.Host) -> Bool {
            switch host {
            case .any: return false
            case .ipv4(let ip): return ip.hasPrefix("127.")
            case .ipv6(let ip): return ip == "::1"
            case .name(let name): return name.lowercased() == "localhost"
            }
        }
        if isWildcard(listen.host) { return isWildcard(target.host) || isLoopback(target.host) }
        if listen.host == target.host { return true }
        // localhost reaches a listener on a loopback address.
        if case .name(let name) = target.host, name.lowercased() == "localhost", isLoopback(listen.host) {
            if case .ipv4(let ip) = listen.host { return ip == "127.0.0.1" }
            return true
        }
        return false
    }

    /// The index `i` of a path `services[i]...`, for ordering.
    static func position(_ path: JSONPath) -> Int {
        let text = path.description
        guard let open = text.firstIndex(of: "["), let close = text.firstIndex(of: "]"), open < close else { return 0 }
        return Int(text[text.index(after: open)..<close]) ?? 0
    }

    /// Why `name` cannot be a service or backend name, if it cannot: it is
    /// one segment of an admin API path, and `_` starts the admin endpoints.
    public static func pathSegmentProblem(_ name: String, what: String) -> String? {
        if name.isEmpty { return "is required" }
        if name.hasPrefix("_") { return "\(what) name \"\(name)\" starts with \"_\", which is reserved for admin endpoints" }
        if name == "." || name == ".." { return "\(what) name \"\(name)\" is not a usable path segment" }
        if name.utf8.count > 255 { return "\(what) name is longer than 255 bytes" }
        if let bad = name.unicodeScalars.first(where: { $0 == "/" || $0 == "?" || $0 == "#" || $0 == "%" || $0.value < 0x21 || $0.value == 0x7f || $0 == "\\" }) {
            let shown = bad.value < 0x21 || bad.value == 0x7f ? "a space or control character" : "\"\(bad)\""
            return "\(what) name \"\(name)\" contains \(shown), which cannot stand in an admin API path"
        }
        return nil
    }

    static func errorPageURLProblem(_ url: String) -> String? {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = url.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            rest = url.dropFirst(8)
        } else {
            return "\"\(url)\" is not an http or https URL"
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if authority.isEmpty || authority.contains(where: { $0 == " " }) {
            return "\"\(url)\" has no host"
        }
        return nil
    }

    static func nonNegative(_ path: JSONPath, _ fields: [(String, Int)]) -> [ConfigProblem] {
        fields.filter { $0.1 < 0 }.map { path.key($0.0).problem("\($0.1) is negative") }
    }

    static func unknownBalance(_ name: String) -> String {
        "unknown balance \"\(name)\" (one of \(Balance.allCases.map(\.rawValue).joined(separator: ", ")))"
    }

    static func unknownNetwork(_ name: String) -> String {
        "unknown network \"\(name)\" (one of \(Network.allCases.map(\.rawValue).joined(separator: ", ")))"
    }
}

/// What makes two listeners collide: one address, one transport.
struct ListenKey: Hashable {
    var address: HostPort
    var transport: String

    init?(_ service: ServiceConfig) {
        guard case .success(let parsed) = HostPort.parse(service.address, listening: true),
            let network = Network(rawValue: service.network.isEmpty ? "tcp" : service.network)
        else { return nil }
        address = parsed
        transport = network.isDatagram ? "udp" : "tcp"
    }

    /// Port 0 asks for any free port, so it never collides.
    var claimsAddress: Bool { address.port != 0 }
}
