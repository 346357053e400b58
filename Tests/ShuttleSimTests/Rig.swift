import ShuttleModel
import ShuttleSim

/// A model and an invariant checker side by side. `send` is what a driver
/// does; `forge` shows the checker actions other than the model's (a
/// hand-made bug); `show` shows the checker an event the model never saw.
struct Rig {
    var registry = Registry(seed: 1)
    var checker = InvariantChecker()
    var nextRequest: UInt64 = 1
    var nextConnection: UInt64 = 1

    /// The model handles `event`; the checker follows. The actions and what the checker found.
    @discardableResult
    mutating func send(_ event: Event, expect: Expectation? = nil) -> (actions: [Action], violation: Violation?) {
        let actions = registry.handle(event)
        return (actions, checker.observe(.event(event, actions: actions, expect: expect), registry: registry))
    }

    /// The model handles `event`, but the checker is shown `actions`.
    mutating func forge(_ event: Event, _ actions: [Action], expect: Expectation? = nil) -> Violation? {
        _ = registry.handle(event)
        return checker.observe(.event(event, actions: actions, expect: expect), registry: registry)
    }

    /// The checker sees `event` and `actions`; the model does not.
    mutating func show(_ event: Event, _ actions: [Action]) -> Violation? {
        checker.observe(.event(event, actions: actions, expect: nil), registry: registry)
    }

    mutating func restart() -> Violation? {
        registry = Registry(seed: 2)
        return checker.observe(.restart(seed: 2), registry: registry)
    }

    mutating func requestID() -> RequestID {
        defer { nextRequest += 1 }
        return RequestID(nextRequest)
    }

    mutating func connectionID() -> ConnectionID {
        defer { nextConnection += 1 }
        return ConnectionID(nextConnection)
    }

    /// Sends an admin command and binds every listener it asks for; the first violation.
    @discardableResult
    mutating func admin(_ command: AdminCommand, expect: Expectation? = nil) -> Violation? {
        var (actions, violation) = send(.admin(requestID(), command), expect: expect)
        while violation == nil, let listener = actions.binds.first {
            actions.removeFirst(actions.firstIndex(of: .bindListener(listener))! + 1)
            let (more, v) = send(.listenerBound(listener.id, address: listener.address))
            actions += more
            violation = v
        }
        return violation
    }

    func listener(_ service: String) -> ListenerID { registry.listener(ofService: service)!.0.id }

    /// A new client of `service`, placed by the model; its target.
    mutating func place(_ service: String) -> (ConnectionID, BackendTarget?, Violation?) {
        let id = connectionID()
        let (actions, v) = send(.clientConnected(id, listener: listener(service), key: .none))
        return (id, actions.targets.first, v)
    }

    /// Places clients until one goes to `backend` (each fails on every backend offered); that target.
    mutating func target(_ service: String, _ backend: String) -> BackendTarget {
        for _ in 0..<50 {
            let (id, target, _) = place(service)
            var actions = send(.backendConnectFailed(id, reason: "test")).actions
            while !actions.targets.isEmpty { actions = send(.backendConnectFailed(id, reason: "test")).actions }
            if let target, target.name == backend { return target }
        }
        fatalError("no connection to \(service)/\(backend)")
    }
}

extension Array where Element == Action {
    var binds: [Listener] {
        compactMap { if case .bindListener(let l) = $0 { return l } else { return nil } }
    }

    var targets: [BackendTarget] {
        compactMap { if case .connectBackend(_, let t) = $0 { return t } else { return nil } }
    }
}

/// Two services: `web` (round robin; `a` checked, weights 1, 3, 1; a virtual
/// host) and `api` (least connections).
let testConfig = Config(
    fall: 1, rise: 1,
    services: [
        ServiceConfig(
            name: "web", address: "10.0.0.1:8001", balance: "RR", virtualHosts: ["www.example.com"],
            backends: [
                BackendConfig(name: "a", address: "10.0.1.1:80", checkAddress: "10.0.1.1:81", weight: 1),
                BackendConfig(name: "b", address: "10.0.1.2:80", weight: 3),
                BackendConfig(name: "c", address: "10.0.1.3:80", weight: 1),
            ]),
        ServiceConfig(
            name: "api", address: "10.0.0.1:8002", balance: "LC",
            backends: [
                BackendConfig(name: "x", address: "10.0.1.4:80"),
                BackendConfig(name: "y", address: "10.0.1.5:80"),
            ]),
    ])
