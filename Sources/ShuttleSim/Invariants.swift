import ShuttleModel

/// The properties checked after every event, in the fuzzer and in replay.
public enum Invariant: String, CaseIterable, Sendable, Codable {
    /// No new connection or request goes to a backend that was removed (or
    /// replaced), once the removal has been applied.
    case removedBackend = "removed-backend"
    /// While a backend that is up exists for a service, no new connection
    /// goes to one that is down, and the service turns no client away.
    case downBackend = "down-backend"
    /// Weighted round robin gives each up backend its share over every window
    /// in which the set of up backends is stable.
    case weightedShares = "weighted-shares"
    /// Least connections puts a connection on a backend with the fewest.
    case leastConnections = "least-connections"
    /// Counters are conserved: a service's totals are the sum over its
    /// backends plus its own; each counter is what the events say; active
    /// counts never go negative and are zero once all traffic has ended.
    case counters
    /// After every applied change, the persisted state equals the running config.
    case persistedState = "persisted-state"
    /// After a restart of the proxy, the configuration is what it was.
    case restoredConfig = "restored-config"
    /// An update that changes nothing disturbs nothing; a change to one
    /// backend or service disturbs no other (listeners, checks, identities).
    case undisturbed
    /// An applied update gives the config that the merge rules give.
    case mergedConfig = "merged-config"
    /// An invalid update changes nothing.
    case invalidUpdate = "invalid-update"
    /// A valid update is applied (unless its listener cannot be bound).
    case validUpdate = "valid-update"
    /// Health follows rise and fall: a backend is marked down after `fall`
    /// failed checks in a row and up after `rise` passed ones, and only then.
    case health
    /// A request goes to a service that serves its host, to one with a
    /// backend up while there is one, and an unknown host gets 404.
    case virtualHosts = "virtual-hosts"
    /// Every connection, request, datagram and admin request ends in a
    /// defined outcome; none vanishes except by an injected fault.
    case outcomes
}

/// A broken invariant and what showed it.
public struct Violation: Error, Sendable, Equatable, CustomStringConvertible {
    public var invariant: Invariant
    public var detail: String

    public init(_ invariant: Invariant, _ detail: String) {
        self.invariant = invariant
        self.detail = detail
    }

    public var description: String { "\(invariant.rawValue): \(detail)" }
}

/// Follows the model's events and actions with its own, independent account
/// of what must be true (a shadow of health, connections, counters,
/// listeners and the config) and compares the model's state with it after
/// every step. It sees only what a driver sees plus the model's public
/// queries, so it checks a recording of a real run as well as a simulation.
public struct InvariantChecker: Sendable {
    struct ShadowHealth: Sendable {
        var isUp = true
        var streak = 0
        var successes = 0
        var failures = 0

        /// The rise/fall rule as the contract states it; true when it flips.
        mutating func record(passed: Bool, rise: Int, fall: Int) -> Bool {
            if passed { successes += 1 } else { failures += 1 }
            if passed == isUp {
                streak = 0
                return false
            }
            streak += 1
            if streak < (isUp ? fall : rise) { return false }
            isUp.toggle()
            streak = 0
            return true
        }
    }

    struct ShadowBackend: Sendable {
        var id: BackendID
        var service: String
        var config: BackendConfig
        var health = ShadowHealth()
        var counters = Counters()
    }

    struct ShadowConnection: Sendable {
        var service: String
        var incarnation: Int
        var backend: BackendID
        var tried: [BackendID]
        var established = false
        var isRequest = false
    }

    /// Where a connection's counts go.
    enum Location: Equatable {
        case backend(BackendID)
        case own(String)
        case nowhere
    }

    /// Choices of a round-robin service since its up set last changed.
    struct ShareWindow: Sendable {
        var version = -1
        var total = 0
        var counts: [BackendID: Int] = [:]
    }

    /// The running config as the checker has followed it.
    var config = Config()
    /// The state file as the persist actions wrote it (survives restarts).
    var persisted: Config?
    /// After a restart: the config that reloading the state file must give.
    var restoring: Config?
    var incarnations: [String: Int] = [:]
    var nextIncarnation = 1
    var backends: [BackendID: ShadowBackend] = [:]
    /// Current backend ids of each service, in config order.
    var ids: [String: [BackendID]] = [:]
    var seen: Set<BackendID> = []
    var checks: [BackendID: HealthCheck] = [:]
    var own: [String: Counters] = [:]
    var connections: [ConnectionID: ShadowConnection] = [:]
    var listeners: [String: Listener] = [:]
    var listenerService: [ListenerID: String] = [:]
    var binding: [ListenerID: Listener] = [:]
    var commands: [RequestID: (AdminCommand, Expectation?)] = [:]
    var versions: [String: Int] = [:]
    var windows: [String: ShareWindow] = [:]
    /// Each service's settings under the running config.
    var serviceSettings: [String: ServiceSettings] = [:]
    var eventsSinceSweep = 0
    /// Events between two full comparisons of every counter.
    public var sweepInterval = 64

    public init() {}

    /// Whether the model holds no connection according to the events.
    public var isIdle: Bool { connections.isEmpty }

    /// Admin requests not answered yet.
    public var unansweredRequests: [RequestID] { commands.keys.sorted() }

    /// Follows one step; `registry` is the model after it. The first broken
    /// invariant, if any.
    public mutating func observe(_ step: TraceStep, registry: Registry) -> Violation? {
        switch step {
        case .restart:
            let persisted = self.persisted
            let interval = sweepInterval
            self = InvariantChecker()
            self.persisted = persisted
            sweepInterval = interval
            restoring = persisted
            return nil
        case .event(let event, let actions, let expect):
            if let v = observe(event, actions, expect, registry) { return v }
            if registry.openConnections != connections.count {
                return Violation(
                    .counters,
                    "the model holds \(registry.openConnections) connections, the events leave \(connections.count) open")
            }
            eventsSinceSweep += 1
            if eventsSinceSweep >= sweepInterval {
                eventsSinceSweep = 0
                return sweep(registry)
            }
            return nil
        }
    }

    /// Checks at the end of a run in which all traffic has ended.
    public func finish(_ registry: Registry) -> Violation? {
        if let v = sweep(registry) { return v }
        if !connections.isEmpty || registry.openConnections != 0 {
            return Violation(
                .counters,
                "traffic has ended, yet the model holds \(registry.openConnections) connections (events leave \(connections.count))")
        }
        for stats in registry.stats() where stats.active != 0 || stats.httpActive != 0 {
            return Violation(
                .counters, "traffic has ended, yet service \(stats.name) has active \(stats.active), http_active \(stats.httpActive)")
        }
        return nil
    }

    // MARK: Events

    mutating func observe(_ event: Event, _ actions: [Action], _ expect: Expectation?, _ registry: Registry) -> Violation? {
        switch event {
        case .admin(let id, let command):
            if commands[id] != nil { return Violation(.outcomes, "admin request \(id) was sent twice") }
            commands[id] = (command, expect)
            return adminActions(actions, registry)
        case .listenerBound, .listenerFailed:
            return adminActions(actions, registry)
        case .checkResult(let id, let passed):
            return checkResult(id, passed, actions, registry)
        case .clientConnected(let id, let listener, _):
            return clientConnected(id, listener, actions, registry)
        case .requestReceived(let id, let request):
            return requestReceived(id, request, actions, registry)
        case .backendConnectFailed(let id, _):
            return backendConnectFailed(id, actions, registry)
        case .backendConnected(let id):
            if let v = noActions(event, actions) { return v }
            guard var c = connections[id], !c.established else { return nil }
            c.established = true
            connections[id] = c
            if c.isRequest {
                count(ownLocation(c)) { $0.httpActive -= 1 }
                count(location(c)) {
                    $0.httpConnections += 1
                    $0.httpActive += 1
                }
                return compare(ownLocation(c), registry) ?? compare(location(c), registry)
            }
            count(location(c)) {
                $0.connections += 1
                $0.active += 1
            }
            return compare(location(c), registry)
        case .bytesTransferred(let id, let sent, let received):
            if let v = noActions(event, actions) { return v }
            guard let c = connections[id], c.established else { return nil }
            count(location(c)) {
                $0.sent += sent
                $0.received += received
            }
            return compare(location(c), registry)
        case .connectionClosed(let id):
            if let v = noActions(event, actions) { return v }
            guard let c = connections.removeValue(forKey: id) else { return nil }
            if c.isRequest { return finish(c, .clientGone, registry) }
            guard c.established else { return nil }
            count(location(c)) { $0.active -= 1 }
            return compare(location(c), registry)
        case .requestFinished(let id, let outcome):
            if let v = noActions(event, actions) { return v }
            guard let c = connections[id], c.isRequest else { return nil }
            connections[id] = nil
            return finish(c, outcome, registry)
        case .timeAdvanced(let instant):
            if let v = noActions(event, actions) { return v }
            if registry.now < instant { return Violation(.outcomes, "the model's clock did not advance to \(instant.nanoseconds)") }
            return nil
        }
    }

    func noActions(_ event: Event, _ actions: [Action]) -> Violation? {
        actions.isEmpty ? nil : Violation(.outcomes, "\(event) produced \(actions), where it decides nothing")
    }

    // MARK: Admin

    /// What the replies of one event applied, checked together once the
    /// event's actions are all seen (one event can commit a pending update
    /// and then queued ones).
    struct Applied {
        var configs: [Config] = []
        var changes: [Action] = []
        var bound: [ListenerID: Listener] = [:]
    }

    mutating func adminActions(_ actions: [Action], _ registry: Registry) -> Violation? {
        let start = config
        var applied = Applied()
        var group: [Action] = []
        for action in actions {
            switch action {
            case .bindListener(let listener):
                if let current = listeners[listener.service], current.address == listener.address,
                    current.network == listener.network
                {
                    return Violation(
                        .undisturbed,
                        "service \(listener.service) asked for a new listener on \(listener.address) though it listens there already")
                }
                binding[listener.id] = listener
            case .closeListener, .startHealthCheck, .stopHealthCheck, .retireBackend, .persist:
                group.append(action)
            case .reply(let id, let reply):
                if let v = settle(id, reply, group, &applied) { return v }
                group = []
            case .connectBackend, .closeClient, .answerRequest, .backendHealthChanged:
                return Violation(.outcomes, "an admin event produced \(action)")
            }
        }
        if !group.isEmpty { return Violation(.persistedState, "actions \(group) came without the reply they belong to") }
        if !applied.configs.isEmpty {
            if let v = commit(from: start, applied, registry) { return v }
            return sweep(registry)
        }
        if registry.config != config {
            return Violation(
                .mergedConfig, "the running config differs from the applied one: \(ReferenceMerge.difference(config, registry.config))")
        }
        return nil
    }

    mutating func settle(_ id: RequestID, _ reply: AdminReply, _ group: [Action], _ applied: inout Applied) -> Violation? {
        guard let (command, expect) = commands.removeValue(forKey: id) else {
            return Violation(.outcomes, "a reply to request \(id), which was not asked or was answered already")
        }
        let reference = ReferenceMerge.apply(command, to: config)
        let pendingBinds = binding
        binding = [:]
        switch reply {
        case .applied(let new):
            if expect == .invalid { return Violation(.invalidUpdate, "an invalid update was applied: \(command)") }
            guard case .merged(let want) = reference else {
                return Violation(.mergedConfig, "applied, though it names what does not exist: \(command)")
            }
            if new != want {
                return Violation(.mergedConfig, "\(command) gave \(ReferenceMerge.difference(want, new))")
            }
            if let restoring {
                // The first answer after a restart is to the state file's reload.
                self.restoring = nil
                if new != restoring {
                    return Violation(.restoredConfig, "after a restart: \(ReferenceMerge.difference(restoring, new))")
                }
            }
            if new == config {
                if !group.isEmpty || !pendingBinds.isEmpty {
                    return Violation(
                        .undisturbed, "an update that changes nothing did \(group + pendingBinds.values.sorted { $0.id < $1.id }.map { .bindListener($0) })")
                }
                return nil
            }
            let persists = group.compactMap { action -> Config? in
                if case .persist(let c) = action { return c } else { return nil }
            }
            if persists != [new] {
                return Violation(.persistedState, "an applied change was persisted \(persists.count) times, as \(persists)")
            }
            persisted = new
            config = new
            applied.configs.append(new)
            applied.changes += group
            applied.bound.merge(pendingBinds) { a, _ in a }
        case .rejected(let problems):
            if restoring != nil { return Violation(.restoredConfig, "the state file's config was rejected on reload: \(problems)") }
            if expect == .valid { return Violation(.validUpdate, "a valid update was rejected: \(command): \(problems)") }
            if problems.isEmpty { return Violation(.invalidUpdate, "rejected without a problem: \(command)") }
            if reference == .notFound { return Violation(.invalidUpdate, "rejected rather than not found: \(command)") }
            if !group.isEmpty { return Violation(.invalidUpdate, "a rejected update did \(group)") }
        case .notFound(let message):
            if expect == .valid { return Violation(.validUpdate, "a valid update was not found: \(command): \(message)") }
            if reference != .notFound { return Violation(.invalidUpdate, "\"\(message)\", yet everything it names exists: \(command)") }
            if !group.isEmpty { return Violation(.invalidUpdate, "an update that found nothing did \(group)") }
        case .bindFailed(let service, let address, _, let reason):
            if expect == .invalid {
                return Violation(.invalidUpdate, "an invalid update got as far as binding \(service) on \(address): \(command)")
            }
            for action in group {
                guard case .closeListener(let l) = action, pendingBinds[l] != nil else {
                    return Violation(.invalidUpdate, "an update whose listener failed (\(reason)) did \(action)")
                }
            }
        }
        return nil
    }

    func network(_ service: ServiceConfig) -> Network {
        Network(rawValue: service.network.isEmpty ? "tcp" : service.network) ?? .tcp
    }

    /// Checks what the applied changes of one event did to listeners,
    /// backend identities and health checks, against the configs before and
    /// after (and in between, when one event applied several).
    mutating func commit(from old: Config, _ applied: Applied, _ registry: Registry) -> Violation? {
        let steps = [old] + applied.configs
        let final = config
        let group = applied.changes
        let bound = applied.bound
        let backendsBefore = Set(backends.keys)
        /// Present at every step, with the same address and network throughout.
        func sameListener(_ name: String) -> Bool {
            guard let first = old.service(named: name) else { return false }
            return steps.allSatisfy { c in
                c.service(named: name).map { $0.address == first.address && network($0) == network(first) } ?? false
            }
        }
        func continued(_ name: String) -> Bool { steps.allSatisfy { $0.service(named: name) != nil } }
        func kept(_ service: String, _ backend: BackendConfig) -> Bool {
            guard continued(service), let first = old.service(named: service)?.backend(named: backend.name) else { return false }
            return steps.allSatisfy { $0.service(named: service)?.backend(named: backend.name)?.isEquivalent(to: first) ?? false }
        }

        // Listeners: an old one may close only if its service went away or moved.
        var closed: Set<ListenerID> = []
        for action in group {
            guard case .closeListener(let id) = action else { continue }
            guard let name = listenerService[id] else {
                return Violation(.undisturbed, "closed listener \(id), which no service had")
            }
            if sameListener(name) {
                return Violation(.undisturbed, "closed the listener of \(name), whose address did not change")
            }
            closed.insert(id)
            listenerService[id] = nil
        }
        for service in old.services where !continued(service.name) {
            if let l = listeners.removeValue(forKey: service.name), !closed.contains(l.id) {
                return Violation(.undisturbed, "removed service \(service.name) kept its listener \(l.id)")
            }
            for id in ids[service.name] ?? [] { backends[id] = nil }
            ids[service.name] = nil
            own[service.name] = nil
            incarnations[service.name] = nil
            windows[service.name] = nil
        }
        for service in final.services {
            guard let (listener, _) = registry.listener(ofService: service.name) else {
                return Violation(.undisturbed, "service \(service.name) has no listener after the update")
            }
            if let current = listeners[service.name], current.id == listener.id {
                if current.address != service.address || current.network != network(service) {
                    return Violation(.undisturbed, "service \(service.name) moved to \(service.address) without a new listener")
                }
            } else {
                if bound[listener.id] == nil || listener.address != service.address {
                    return Violation(.undisturbed, "service \(service.name) listens with \(listener), which was never bound")
                }
                if let previous = listeners[service.name], !closed.contains(previous.id) {
                    return Violation(.undisturbed, "service \(service.name) moved, but its old listener \(previous.id) stays open")
                }
                listeners[service.name] = listener
                listenerService[listener.id] = service.name
            }
        }

        // Backends: an equal one keeps its identity, a changed one gets a new one.
        for service in final.services {
            let was = continued(service.name) ? old.service(named: service.name) : nil
            if was == nil {
                incarnations[service.name] = nextIncarnation
                nextIncarnation += 1
                own[service.name] = Counters()
            }
            var next: [BackendID] = []
            for b in service.backends {
                guard let id = registry.backendID(service: service.name, backend: b.name) else {
                    return Violation(.mergedConfig, "backend \(service.name)/\(b.name) is not in the model after the update")
                }
                if kept(service.name, b),
                    let oldID = ids[service.name]?.first(where: { backends[$0]?.config.name == b.name })
                {
                    if id != oldID {
                        return Violation(.undisturbed, "backend \(service.name)/\(b.name) was replaced though its config did not change")
                    }
                    backends[id]!.config = b
                } else {
                    if seen.contains(id) {
                        return Violation(.removedBackend, "changed or new backend \(service.name)/\(b.name) kept the identity \(id) of an old one")
                    }
                    seen.insert(id)
                    backends[id] = ShadowBackend(id: id, service: service.name, config: b)
                }
                next.append(id)
            }
            for id in ids[service.name] ?? [] where !next.contains(id) {
                if let retired = backends.removeValue(forKey: id) {
                    own[service.name] = (own[service.name] ?? Counters()) + retired.counters
                }
            }
            ids[service.name] = next
            let settingsChanged =
                was.map { ServiceSettings(service: $0, global: old) != ServiceSettings(service: service, global: final) }
                ?? true
            if was != service || settingsChanged { versions[service.name, default: 0] += 1 }
        }

        serviceSettings = [:]
        for service in final.services { serviceSettings[service.name] = ServiceSettings(service: service, global: final) }

        // Retired: every backend that left (its idle connections are closed), and none that stays.
        let retired = Set(group.compactMap { action -> BackendID? in
            if case .retireBackend(let id) = action { return id } else { return nil }
        })
        if let kept = retired.first(where: { backends[$0] != nil }) {
            return Violation(.removedBackend, "retired \(kept), which is still in the config")
        }
        if let left = backendsBefore.subtracting(backends.keys).first(where: { !retired.contains($0) }) {
            return Violation(.removedBackend, "\(left) left the config without being retired")
        }

        // Checks: exactly the backends with a check address, restarted only when they changed.
        var stopped: [BackendID: HealthCheck] = [:]
        for action in group {
            switch action {
            case .stopHealthCheck(let id):
                guard let check = checks.removeValue(forKey: id) else {
                    return Violation(.undisturbed, "stopped the check of \(id), which was not running")
                }
                stopped[id] = check
            case .startHealthCheck(let check):
                if checks[check.backend] != nil {
                    return Violation(.undisturbed, "started a second check of \(check.service)/\(check.name)")
                }
                checks[check.backend] = check
            default:
                break
            }
        }
        var expected = 0
        for service in final.services {
            let settings = ServiceSettings(service: service, global: final)
            for id in ids[service.name] ?? [] {
                let b = backends[id]!
                guard !b.config.checkAddress.isEmpty else {
                    if checks[id] != nil { return Violation(.health, "\(service.name)/\(b.config.name) has no check address, yet is checked") }
                    continue
                }
                expected += 1
                guard let check = checks[id] else {
                    return Violation(.health, "\(service.name)/\(b.config.name) has a check address, yet is not checked")
                }
                if check.service != service.name || check.name != b.config.name || check.address != b.config.checkAddress
                    || check.interval != settings.checkInterval || check.timeout != settings.checkTimeout
                {
                    return Violation(
                        .health,
                        "the check of \(service.name)/\(b.config.name) is \(check), not every \(settings.checkInterval) ms on \(b.config.checkAddress) with timeout \(settings.checkTimeout)"
                    )
                }
                if let before = stopped[id], before == check {
                    return Violation(.undisturbed, "the check of \(service.name)/\(b.config.name) was restarted though it did not change")
                }
            }
        }
        if checks.count != expected {
            return Violation(.health, "\(checks.count) checks run for \(expected) backends with a check address")
        }
        return nil
    }

    // MARK: Health

    func settings(_ service: String) -> ServiceSettings? { serviceSettings[service] }

    mutating func checkResult(_ id: BackendID, _ passed: Bool, _ actions: [Action], _ registry: Registry) -> Violation? {
        guard checks[id] != nil, var b = backends[id], let settings = settings(b.service) else {
            if !actions.isEmpty { return Violation(.health, "a result for \(id), which is not checked, did \(actions)") }
            return nil
        }
        let streak = b.health.streak
        let wasUp = b.health.isUp
        let flipped = b.health.record(passed: passed, rise: settings.rise, fall: settings.fall)
        backends[id] = b
        let want: [Action] =
            flipped ? [.backendHealthChanged(id, service: b.service, backend: b.config.name, isUp: b.health.isUp)] : []
        let name = "\(b.service)/\(b.config.name)"
        if actions != want {
            return Violation(
                .health,
                "a \(passed ? "passed" : "failed") check of \(name) (\(wasUp ? "up" : "down") with \(streak) results against it before, rise \(settings.rise), fall \(settings.fall)) did \(actions), not \(want)"
            )
        }
        if flipped { versions[b.service, default: 0] += 1 }
        guard let stats = registry.stats(service: b.service, backend: b.config.name) else {
            return Violation(.health, "\(name) is missing from the stats")
        }
        if stats.up != b.health.isUp {
            return Violation(.health, "\(name) is \(stats.up ? "up" : "down") after a \(passed ? "passed" : "failed") check; rise/fall say \(b.health.isUp ? "up" : "down")")
        }
        if stats.checkSuccess != b.health.successes || stats.checkFail != b.health.failures {
            return Violation(
                .health,
                "\(name) counts \(stats.checkSuccess) passed and \(stats.checkFail) failed checks; the results were \(b.health.successes) and \(b.health.failures)"
            )
        }
        return nil
    }

    func upBackends(_ service: String) -> [BackendID] {
        (ids[service] ?? []).filter { backends[$0]?.health.isUp ?? false }
    }

    func hasUp(_ service: String) -> Bool {
        (ids[service] ?? []).contains { backends[$0]?.health.isUp ?? false }
    }

    // MARK: Placement

    /// A target must be a current, up backend of the service, with the
    /// service's settings, not tried before.
    func placement(_ target: BackendTarget, _ service: String, tried: [BackendID], forRequest: Bool) -> Violation? {
        guard target.service == service, let b = backends[target.id], b.service == service else {
            return Violation(
                .removedBackend, "\(service) sent a connection to \(target.service)/\(target.name) (\(target.id)), which is not one of its backends now")
        }
        if b.config.name != target.name || b.config.address != target.address || b.config.effectiveNetwork != target.network {
            return Violation(.removedBackend, "\(service)/\(b.config.name) is \(b.config.address), yet a connection went to \(target.address)")
        }
        if tried.contains(target.id) {
            return Violation(.outcomes, "a connection to \(service) was sent to \(target.name) a second time")
        }
        if !b.health.isUp {
            let up = upBackends(service).compactMap { backends[$0]?.config.name }
            return Violation(
                .downBackend,
                "a connection to \(service) went to \(target.name), which is down" + (up.isEmpty ? "" : ", while \(up.joined(separator: ", ")) up"))
        }
        // An HTTP request waits a bounded time for its answer even when the
        // config sets no server timeout (the original's silent-backend bug).
        let serverTimeout = settings(service).map { s in
            forRequest && s.serverTimeout == 0 ? Defaults.httpServerTimeout : s.serverTimeout
        }
        if let s = settings(service), let serverTimeout,
            s.connectTimeout != target.connectTimeout || s.clientTimeout != target.clientTimeout
                || serverTimeout != target.serverTimeout
        {
            return Violation(
                .mergedConfig,
                "a connection to \(service) carries timeouts connect \(target.connectTimeout), client \(target.clientTimeout), server \(target.serverTimeout); the config says \(s.connectTimeout), \(s.clientTimeout), \(serverTimeout)"
            )
        }
        return nil
    }

    /// The balancing rules that can be checked from outside.
    mutating func balancing(_ target: BackendTarget, _ service: String) -> Violation? {
        guard let s = settings(service) else { return nil }
        switch s.balance {
        case .roundRobin:
            let version = versions[service, default: 0]
            var window = windows[service] ?? ShareWindow()
            if window.version != version { window = ShareWindow(version: version) }
            window.total += 1
            window.counts[target.id, default: 0] += 1
            windows[service] = window
            let current = ids[service] ?? []
            var total = 0
            for id in current where backends[id]!.health.isUp { total += backends[id]!.config.effectiveWeight }
            guard total > 0 else { return nil }
            let rounds = window.total / total
            for id in current where backends[id]!.health.isUp {
                let weight = backends[id]!.config.effectiveWeight
                let got = window.counts[id] ?? 0
                if got < rounds * weight || got > (rounds + 1) * weight {
                    let up = upBackends(service)
                    let shares = up.map { "\(backends[$0]!.config.name) \(window.counts[$0] ?? 0)/w\(backends[$0]!.config.effectiveWeight)" }
                    return Violation(
                        .weightedShares,
                        "over the last \(window.total) connections to \(service) with its up backends unchanged: \(shares.joined(separator: ", "))")
                }
            }
        case .leastConnections:
            var least = Int.max
            for id in ids[service] ?? [] where backends[id]!.health.isUp { least = min(least, backends[id]!.counters.active) }
            let chosen = backends[target.id]?.counters.active ?? 0
            if chosen > least {
                let up = upBackends(service)
                let loads = up.map { "\(backends[$0]!.config.name) \(backends[$0]!.counters.active)" }
                return Violation(
                    .leastConnections, "\(service) chose \(target.name) with \(chosen) active; loads: \(loads.joined(separator: ", "))")
            }
        case .powerOfTwoChoices, .consistentHash:
            break
        }
        return nil
    }

    mutating func clientConnected(_ id: ConnectionID, _ listener: ListenerID, _ actions: [Action], _ registry: Registry)
        -> Violation?
    {
        guard actions.count == 1 else {
            return Violation(.outcomes, "a new connection got \(actions.count) decisions: \(actions)")
        }
        if connections[id] != nil { return Violation(.outcomes, "connection \(id) arrived twice") }
        guard let service = listenerService[listener] else {
            if actions[0] != .closeClient(id, .noService) {
                return Violation(.outcomes, "a connection on \(listener), which serves no service now, got \(actions[0])")
            }
            return nil
        }
        switch actions[0] {
        case .closeClient(id, .noBackend(service)):
            if hasUp(service) {
                let up = upBackends(service).compactMap { backends[$0]?.config.name }
                return Violation(.downBackend, "\(service) turned a client away while \(up.joined(separator: ", ")) up")
            }
            count(.own(service)) { $0.errors += 1 }
            return compare(.own(service), registry)
        case .connectBackend(id, let target):
            if let v = placement(target, service, tried: [], forRequest: false) ?? balancing(target, service) { return v }
            connections[id] = ShadowConnection(
                service: service, incarnation: incarnations[service] ?? 0, backend: target.id, tried: [target.id])
            return nil
        default:
            return Violation(.outcomes, "a connection to \(service) got \(actions[0])")
        }
    }

    mutating func requestReceived(_ id: ConnectionID, _ request: HTTPRequest, _ actions: [Action], _ registry: Registry)
        -> Violation?
    {
        guard actions.count == 1 else {
            return Violation(.outcomes, "a request got \(actions.count) decisions: \(actions)")
        }
        let host = VirtualHostOracle.normalize(header: request.host)
        let candidates = host.map { VirtualHostOracle.candidates($0, in: config) }

        func routed(_ service: String) -> Violation? {
            guard let candidates else { return nil }  // a header the oracle does not read
            guard candidates.contains(service) else {
                return Violation(.virtualHosts, "a request for \(request.host ?? "-") went to \(service), which does not serve it (\(candidates))")
            }
            if !hasUp(service), let other = candidates.first(where: hasUp) {
                return Violation(
                    .virtualHosts, "a request for \(request.host ?? "-") went to \(service), which has no backend up, while \(other) has")
            }
            return nil
        }

        switch actions[0] {
        case .answerRequest(id, .badRequest):
            if host != nil { return Violation(.virtualHosts, "a request for \(request.host ?? "-") was answered 400") }
            return nil
        case .answerRequest(id, .unknownHost):
            if let candidates, !candidates.isEmpty {
                return Violation(.virtualHosts, "a request for \(request.host ?? "-") was answered 404, though \(candidates) serve it")
            }
            return nil
        case .answerRequest(id, .redirect(let service, _)):
            if let v = routed(service) { return v }
            count(.own(service)) { $0.httpConnections += 1 }
            return compare(.own(service), registry)
        case .answerRequest(id, .maintenance(let service)):
            if let v = routed(service) { return v }
            if config.service(named: service)?.maintenanceMode != true {
                return Violation(.mergedConfig, "\(service) answered for maintenance, which is off")
            }
            count(.own(service)) { $0.httpConnections += 1 }
            return compare(.own(service), registry)
        case .answerRequest(id, .noBackend(let service)):
            if let v = routed(service) { return v }
            if hasUp(service) { return Violation(.downBackend, "\(service) answered 503 with a backend up") }
            count(.own(service)) {
                $0.httpConnections += 1
                $0.httpErrors += 1
            }
            return compare(.own(service), registry)
        case .connectBackend(id, let target):
            let service = target.service
            if config.service(named: service) == nil {
                return Violation(.removedBackend, "a request went to \(service), which does not exist")
            }
            if let v = routed(service) ?? placement(target, service, tried: [], forRequest: true) ?? balancing(target, service) {
                return v
            }
            if config.service(named: service)?.maintenanceMode == true {
                return Violation(.mergedConfig, "a request went to a backend of \(service), which is in maintenance")
            }
            let c = ShadowConnection(
                service: service, incarnation: incarnations[service] ?? 0, backend: target.id, tried: [target.id],
                isRequest: true)
            connections[id] = c
            count(.own(service)) { $0.httpActive += 1 }
            return compare(.own(service), registry)
        default:
            return Violation(.outcomes, "a request got \(actions[0])")
        }
    }

    mutating func backendConnectFailed(_ id: ConnectionID, _ actions: [Action], _ registry: Registry) -> Violation? {
        guard var c = connections[id], !c.established else {
            if !actions.isEmpty { return Violation(.outcomes, "a late connect failure of \(id) did \(actions)") }
            return nil
        }
        let failedAt = location(c)
        count(failedAt) { $0.errors += 1 }
        guard actions.count == 1 else {
            return Violation(.outcomes, "a failed connect got \(actions.count) decisions: \(actions)")
        }
        let current = incarnations[c.service] == c.incarnation
        switch actions[0] {
        case .connectBackend(id, let target):
            if !current { return Violation(.removedBackend, "a connection of removed service \(c.service) was sent on to \(target.name)") }
            if let v = placement(target, c.service, tried: c.tried, forRequest: c.isRequest) { return v }
            c.backend = target.id
            c.tried.append(target.id)
            connections[id] = c
            return compare(failedAt, registry)
        case .closeClient(id, .allBackendsFailed(let service, _)) where !c.isRequest,
            .answerRequest(id, .allBackendsFailed(let service, _)) where c.isRequest:
            if service != c.service { return Violation(.outcomes, "a connection to \(c.service) failed as one of \(service)") }
            if current, let untried = upBackends(c.service).first(where: { !c.tried.contains($0) }) {
                return Violation(
                    .downBackend, "\(c.service) gave up on a connection while \(backends[untried]!.config.name) is up and was not tried")
            }
            connections[id] = nil
            if c.isRequest {
                count(ownLocation(c)) {
                    $0.httpActive -= 1
                    $0.httpConnections += 1
                    $0.httpErrors += 1
                }
                return compare(failedAt, registry) ?? compare(ownLocation(c), registry)
            }
            return compare(failedAt, registry)
        default:
            return Violation(.outcomes, "a failed connect to \(c.service) got \(actions[0])")
        }
    }

    mutating func finish(_ c: ShadowConnection, _ outcome: RequestOutcome, _ registry: Registry) -> Violation? {
        var failed = false
        if case .failed = outcome { failed = true }
        if c.established {
            count(location(c)) {
                $0.httpActive -= 1
                if failed { $0.httpErrors += 1 }
            }
            return compare(location(c), registry)
        }
        count(ownLocation(c)) {
            $0.httpActive -= 1
            $0.httpConnections += 1
            if failed { $0.httpErrors += 1 }
        }
        return compare(ownLocation(c), registry)
    }

    // MARK: Counters

    func location(_ c: ShadowConnection) -> Location {
        guard incarnations[c.service] == c.incarnation else { return .nowhere }
        if let b = backends[c.backend], b.service == c.service { return .backend(c.backend) }
        return .own(c.service)
    }

    func ownLocation(_ c: ShadowConnection) -> Location {
        incarnations[c.service] == c.incarnation ? .own(c.service) : .nowhere
    }

    mutating func count(_ location: Location, _ update: (inout Counters) -> Void) {
        switch location {
        case .backend(let id): update(&backends[id]!.counters)
        case .own(let service): if own[service] != nil { update(&own[service]!) }
        case .nowhere: break
        }
    }

    /// Equal in the counters the checker follows.
    func same(_ a: Counters, _ b: Counters) -> Bool {
        a.sent == b.sent && a.received == b.received && a.errors == b.errors && a.connections == b.connections
            && a.active == b.active && a.httpConnections == b.httpConnections && a.httpActive == b.httpActive
            && a.httpErrors == b.httpErrors
    }

    func describe(_ c: Counters) -> String {
        "sent \(c.sent) received \(c.received) errors \(c.errors) connections \(c.connections) active \(c.active) http_connections \(c.httpConnections) http_active \(c.httpActive) http_errors \(c.httpErrors)"
    }

    /// The model's counters at `location` against the shadow's.
    func compare(_ location: Location, _ registry: Registry) -> Violation? {
        switch location {
        case .nowhere:
            return nil
        case .own(let service):
            guard let want = own[service] else { return nil }
            guard let got = registry.ownCounters(service: service) else {
                return Violation(.counters, "service \(service) is missing from the model")
            }
            if !same(got, want) {
                return Violation(.counters, "\(service)'s own counters are \(describe(got)); the events say \(describe(want))")
            }
            if got.active < 0 || got.httpActive < 0 { return Violation(.counters, "\(service)'s own active count is negative") }
            return nil
        case .backend(let id):
            let b = backends[id]!
            guard let s = registry.stats(service: b.service, backend: b.config.name) else {
                return Violation(.counters, "\(b.service)/\(b.config.name) is missing from the stats")
            }
            let w = b.counters
            if s.sent != w.sent || s.received != w.received || s.errors != w.errors || s.connections != w.connections
                || s.active != w.active || s.httpActive != w.httpActive
            {
                return Violation(
                    .counters,
                    "\(b.service)/\(b.config.name) counts sent \(s.sent) received \(s.received) errors \(s.errors) connections \(s.connections) active \(s.active) http_active \(s.httpActive); the events say \(describe(w))"
                )
            }
            if s.active < 0 || s.httpActive < 0 { return Violation(.counters, "\(b.service)/\(b.config.name) has a negative active count") }
            return nil
        }
    }

    /// Everything at once: config, persisted state, listeners, every counter.
    func sweep(_ registry: Registry) -> Violation? {
        if registry.config != config {
            return Violation(.mergedConfig, "the running config differs from the applied one: \(ReferenceMerge.difference(config, registry.config))")
        }
        if let persisted, restoring == nil, persisted != registry.config {
            return Violation(.persistedState, "the state file differs from /_config: \(ReferenceMerge.difference(registry.config, persisted))")
        }
        for service in config.services {
            guard let stats = registry.stats(service: service.name) else {
                return Violation(.counters, "service \(service.name) has no stats")
            }
            var total = own[service.name] ?? Counters()
            let current = ids[service.name] ?? []
            if stats.backends.count != current.count {
                return Violation(.counters, "\(service.name) lists \(stats.backends.count) backends, the config \(current.count)")
            }
            for id in current {
                let b = backends[id]!
                total = total + b.counters
                if let v = compare(.backend(id), registry) { return v }
                if registry.backendID(service: service.name, backend: b.config.name) != id {
                    return Violation(.undisturbed, "\(service.name)/\(b.config.name) changed identity outside an update")
                }
                if registry.isUp(service: service.name, backend: b.config.name) != b.health.isUp {
                    return Violation(.health, "\(service.name)/\(b.config.name) changed health without a check result")
                }
            }
            if let v = compare(.own(service.name), registry) { return v }
            if stats.sent != total.sent || stats.received != total.received || stats.errors != total.errors
                || stats.connections != total.connections || stats.active != total.active
                || stats.httpActive != total.httpActive || stats.httpConnections != total.httpConnections
                || stats.httpErrors != total.httpErrors
            {
                return Violation(
                    .counters,
                    "\(service.name)'s totals are sent \(stats.sent) received \(stats.received) errors \(stats.errors) connections \(stats.connections) active \(stats.active) http_connections \(stats.httpConnections) http_active \(stats.httpActive) http_errors \(stats.httpErrors), not its backends' plus its own: \(describe(total))"
                )
            }
        }
        return nil
    }
}
