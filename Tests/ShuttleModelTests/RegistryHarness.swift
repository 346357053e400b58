@testable import ShuttleModel

/// Drives a registry as a driver would: numbers admin requests, answers
/// every bind request with success unless told otherwise, and keeps every
/// action returned.
struct Harness {
    var registry: Registry
    var nextRequest: UInt64 = 1
    var nextConnection: UInt64 = 1
    /// Every action returned so far, in order.
    var log: [Action] = []

    init(seed: UInt64 = 0, settings: ProxySettings = ProxySettings()) {
        registry = Registry(seed: seed, settings: settings)
    }

    /// Feeds one event; returns its actions.
    @discardableResult
    mutating func send(_ event: Event) -> [Action] {
        let actions = registry.handle(event)
        log += actions
        return actions
    }

    /// Sends an admin command, then answers each bind it asks for (and those
    /// of queued commands it releases) with success. All the actions.
    @discardableResult
    mutating func admin(_ command: AdminCommand) -> [Action] {
        let id = RequestID(nextRequest)
        nextRequest += 1
        return bindAll(send(.admin(id, command)))
    }

    /// Answers every `.bindListener` in `actions` (and in what they lead to)
    /// with success; `actions` followed by everything that came of it.
    mutating func bindAll(_ actions: [Action]) -> [Action] {
        var all = actions
        var binds = actions.binds
        while !binds.isEmpty {
            let listener = binds.removeFirst()
            let more = send(.listenerBound(listener.id, address: listener.address))
            all += more
            binds += more.binds
        }
        return all
    }

    /// Applies a whole config as a POST `/_config` carrying every field.
    @discardableResult
    mutating func apply(_ config: Config) -> [Action] {
        admin(.updateConfig(ConfigUpdate(config)))
    }

    /// The listener of a service.
    func listener(_ service: String) -> ListenerID? {
        registry.listener(ofService: service)?.0.id
    }

    /// A new client on the service's listener; the actions.
    mutating func connect(_ service: String, key: BalanceKey = .none) -> (ConnectionID, [Action]) {
        let id = ConnectionID(nextConnection)
        nextConnection += 1
        guard let listener = listener(service) else { return (id, []) }
        return (id, send(.clientConnected(id, listener: listener, key: key)))
    }
}

extension Array where Element == Action {
    var binds: [Listener] {
        compactMap { if case .bindListener(let l) = $0 { return l } else { return nil } }
    }

    var replies: [(RequestID, AdminReply)] {
        compactMap { if case .reply(let id, let reply) = $0 { return (id, reply) } else { return nil } }
    }

    var closedListeners: [ListenerID] {
        compactMap { if case .closeListener(let id) = $0 { return id } else { return nil } }
    }

    var startedChecks: [HealthCheck] {
        compactMap { if case .startHealthCheck(let check) = $0 { return check } else { return nil } }
    }

    var stoppedChecks: [BackendID] {
        compactMap { if case .stopHealthCheck(let id) = $0 { return id } else { return nil } }
    }

    var retiredBackends: [BackendID] {
        compactMap { if case .retireBackend(let id) = $0 { return id } else { return nil } }
    }

    var targets: [BackendTarget] {
        compactMap { if case .connectBackend(_, let target) = $0 { return target } else { return nil } }
    }

    var answers: [HTTPAnswer] {
        compactMap { if case .answerRequest(_, let answer) = $0 { return answer } else { return nil } }
    }

    var closedClients: [CloseReason] {
        compactMap { if case .closeClient(_, let reason) = $0 { return reason } else { return nil } }
    }

    var healthChanges: [(BackendID, String, String, Bool)] {
        compactMap {
            if case .backendHealthChanged(let id, let service, let backend, let isUp) = $0 {
                return (id, service, backend, isUp)
            } else {
                return nil
            }
        }
    }
}
