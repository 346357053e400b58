/// An admin update waiting for its new listeners to be bound. Nothing of it
/// is applied until all are bound; if one fails, none is kept.
struct PendingUpdate: Sendable {
    var request: RequestID
    var candidate: Config
    /// New listeners by service.
    var listeners: [String: Listener]
    var waiting: Set<ListenerID>
    var bound: [ListenerID: String] = [:]
    var failure: (Listener, String)?
}

extension Registry {
    mutating func admin(_ id: RequestID, _ command: AdminCommand) -> [Action] {
        if pending != nil {
            queued.append((id, command))
            return []
        }
        var actions = start(id, command)
        drainQueue(into: &actions)
        return actions
    }

    /// Starts queued requests while no update is pending.
    mutating func drainQueue(into actions: inout [Action]) {
        while pending == nil && !queued.isEmpty {
            let (id, command) = queued.removeFirst()
            actions += start(id, command)
        }
    }

    mutating func start(_ id: RequestID, _ command: AdminCommand) -> [Action] {
        let candidate: Config
        switch prepare(command) {
        case .failure(let error): return [.reply(id, error.reply)]
        case .success(let c): candidate = c
        }
        if candidate == config { return [.reply(id, .applied(config))] }

        var newListeners: [String: Listener] = [:]
        for service in candidate.services {
            let network = Network(rawValue: service.network.isEmpty ? "tcp" : service.network) ?? .tcp
            if let current = services[service.name]?.listener, current.address == service.address,
                current.network == network
            {
                continue
            }
            let listener = Listener(
                id: ListenerID(nextListenerID), service: service.name, address: service.address, network: network)
            nextListenerID += 1
            newListeners[service.name] = listener
        }
        if newListeners.isEmpty { return commit(id, candidate, newListeners: [:]) }
        pending = PendingUpdate(
            request: id, candidate: candidate, listeners: newListeners,
            waiting: Set(newListeners.values.map(\.id)))
        return newListeners.values.sorted { $0.id < $1.id }.map { .bindListener($0) }
    }

    /// The config a command would produce, or why it cannot be applied.
    func prepare(_ command: AdminCommand) -> Result<Config, AdminReplyError> {
        switch command {
        case .updateConfig(let update):
            let candidate = config.merging(update)
            let problems =
                Validation.check(update)
                + Validation.checkMerged(
                    candidate, touched: Validation.touchedPaths(update), bodies: Validation.bodies(update))
            return problems.isEmpty ? .success(candidate) : .failure(.rejected(problems))

        case .upsertService(let name, var update):
            var problems: [ConfigProblem] = []
            if !update.service.name.isEmpty && update.service.name != name {
                problems.append(
                    JSONPath("name").problem("\"\(update.service.name)\" does not match the service \"\(name)\" of the path"))
            } else if let reason = Validation.pathSegmentProblem(name, what: "service") {
                problems.append(JSONPath("name").problem(reason))
            }
            update.service.name = name
            problems += Validation.check(update.service, at: JSONPath())
            guard problems.isEmpty else { return .failure(.rejected(problems)) }
            let candidate = config.upserting(update)
            let body = update.present.contains(.backends) ? [name: update.service] : [:]
            problems += Validation.checkMerged(candidate, touched: [name: JSONPath()], bodies: body)
            return problems.isEmpty ? .success(candidate) : .failure(.rejected(problems))

        case .removeService(let name):
            guard config.service(named: name) != nil else { return .failure(.notFound("service \"\(name)\" not found")) }
            return .success(config.removingService(name))

        case .upsertBackend(let serviceName, let name, var backend):
            guard let service = config.service(named: serviceName) else {
                return .failure(.notFound("service \"\(serviceName)\" not found"))
            }
            var problems: [ConfigProblem] = []
            if !backend.name.isEmpty && backend.name != name {
                problems.append(
                    JSONPath("name").problem("\"\(backend.name)\" does not match the backend \"\(name)\" of the path"))
            }
            backend.name = name
            problems += Validation.check(backend, at: JSONPath())
            let serviceNetwork = ServiceSettings(service: service, global: config).network
            if let own = Network(rawValue: backend.network.isEmpty ? "tcp" : backend.network),
                own.isDatagram != serviceNetwork.isDatagram
            {
                problems.append(
                    JSONPath("network").problem(
                        "\(own.rawValue) backend cannot serve \(serviceNetwork.rawValue) service \"\(serviceName)\""))
            }
            guard problems.isEmpty else { return .failure(.rejected(problems)) }
            var candidate = config
            let i = candidate.services.firstIndex { $0.name == serviceName }!
            candidate.services[i] = service.upserting(backend)
            return .success(candidate)

        case .removeBackend(let serviceName, let name):
            guard let service = config.service(named: serviceName) else {
                return .failure(.notFound("service \"\(serviceName)\" not found"))
            }
            guard service.backend(named: name) != nil else {
                return .failure(.notFound("backend \"\(name)\" of service \"\(serviceName)\" not found"))
            }
            var candidate = config
            let i = candidate.services.firstIndex { $0.name == serviceName }!
            candidate.services[i].backends.removeAll { $0.name == name }
            return .success(candidate)
        }
    }

    mutating func listenerResult(_ id: ListenerID, _ result: Result<String, BindError>) -> [Action] {
        guard var update = pending, update.waiting.remove(id) != nil else { return [] }
        switch result {
        case .success(let address):
            update.bound[id] = address
        case .failure(let error):
            if update.failure == nil, let listener = update.listeners.values.first(where: { $0.id == id }) {
                update.failure = (listener, error.reason)
            }
        }
        pending = update
        guard update.waiting.isEmpty else { return [] }
        pending = nil

        var actions: [Action]
        if let (listener, reason) = update.failure {
            actions = update.bound.keys.sorted().map { .closeListener($0) }
            actions.append(
                .reply(
                    update.request,
                    .bindFailed(
                        service: listener.service, address: listener.address, network: listener.network, reason: reason)))
        } else {
            actions = commit(update.request, update.candidate, newListeners: update.listeners)
            for (id, address) in update.bound { boundAddresses[id] = address }
        }
        drainQueue(into: &actions)
        return actions
    }

    /// Makes `candidate` the running config: adopts the new listeners,
    /// closes the old, keeps equal backends, replaces changed ones, and
    /// starts and stops health checks where they differ.
    mutating func commit(_ id: RequestID, _ candidate: Config, newListeners: [String: Listener]) -> [Action] {
        var actions: [Action] = []
        let old = config
        serviceLayout &+= 1

        for name in services.keys.sorted() where candidate.service(named: name) == nil {
            let state = services.removeValue(forKey: name)!
            if let listener = state.listener {
                actions.append(.closeListener(listener.id))
                listeners[listener.id] = nil
                boundAddresses[listener.id] = nil
            }
            for backend in state.backends {
                if backend.check != nil { actions.append(.stopHealthCheck(backend.id)) }
                actions.append(.retireBackend(backend.id))
            }
        }

        for serviceConfig in candidate.services {
            let settings = ServiceSettings(service: serviceConfig, global: candidate)
            var state: ServiceState
            if let existing = services[serviceConfig.name] {
                state = existing
            } else {
                state = ServiceState(generation: nextGeneration, config: serviceConfig, settings: settings, listener: nil)
                nextGeneration += 1
            }
            state.config = serviceConfig
            state.settings = settings

            if let listener = newListeners[serviceConfig.name] {
                if let previous = state.listener {
                    actions.append(.closeListener(previous.id))
                    listeners[previous.id] = nil
                    boundAddresses[previous.id] = nil
                }
                state.listener = listener
                listeners[listener.id] = serviceConfig.name
            }

            // Backends: equal ones kept (health, counters, connections),
            // changed ones replaced by a new id, missing ones removed.
            var current: [String: BackendState] = [:]
            for backend in state.backends { current[backend.name] = backend }
            var next: [BackendState] = []
            for backendConfig in serviceConfig.backends {
                if var kept = current.removeValue(forKey: backendConfig.name), kept.config.isEquivalent(to: backendConfig) {
                    kept.config = backendConfig
                    next.append(kept)
                } else {
                    next.append(BackendState(id: BackendID(nextBackendID), config: backendConfig))
                    nextBackendID += 1
                }
            }
            let nextIDs = Set(next.map(\.id))
            for retired in state.backends where !nextIDs.contains(retired.id) {
                if retired.check != nil { actions.append(.stopHealthCheck(retired.id)) }
                actions.append(.retireBackend(retired.id))
                state.own = state.own + retired.counters
            }
            for i in next.indices {
                let wanted = state.healthCheck(for: next[i])
                guard wanted != next[i].check else { continue }
                if next[i].check != nil { actions.append(.stopHealthCheck(next[i].id)) }
                if let wanted { actions.append(.startHealthCheck(wanted)) }
                next[i].check = wanted
            }
            let changedSet =
                next.count != state.backends.count
                || zip(next, state.backends).contains { $0.name != $1.name || $0.weight != $1.weight }
            state.backends = next
            if changedSet { state.balancer.backendsChanged(next) }
            services[serviceConfig.name] = state
        }

        let vhostsChanged =
            old.services.map { [$0.name] + $0.virtualHosts } != candidate.services.map { [$0.name] + $0.virtualHosts }
        if vhostsChanged { virtualHosts = VirtualHostTable(candidate) }
        config = candidate
        // Order: listeners first, then checks, then the state file, then the answer.
        actions.append(.persist(candidate))
        actions.append(.reply(id, .applied(candidate)))
        return actions
    }
}

/// Why an admin command is not applied.
enum AdminReplyError: Error {
    case rejected([ConfigProblem])
    case notFound(String)
}

extension AdminReplyError {
    var reply: AdminReply {
        switch self {
        case .rejected(let problems): return .rejected(problems)
        case .notFound(let message): return .notFound(message)
        }
    }
}
