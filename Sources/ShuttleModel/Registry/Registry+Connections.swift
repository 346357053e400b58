/// Placing client connections on backends: the first choice from the
/// service's balancer, the next untried backend after a failed connect,
/// and giving up when none is left. Both drivers only carry this out.
extension Registry {
    mutating func clientConnected(_ connection: ConnectionID, listener: ListenerID, key: BalanceKey) -> [Action] {
        [place(connection, listener: listener, key: key).action(for: connection)]
    }

    /// A client connected to a listener (for UDP: a new flow's first
    /// datagram): the same as handling `.clientConnected`, without the array
    /// of actions, for the drivers' hot path. Allocates nothing but the
    /// connection's entry.
    public mutating func place(_ connection: ConnectionID, listener: ListenerID, key: BalanceKey) -> Placement {
        guard let name = listeners[listener], let index = services.index(forKey: name) else {
            return .close(.noService)
        }
        guard let placed = services.values[index].place(key: key, random: &random) else {
            services.values[index].own.errors += 1
            return .close(.noBackend(service: name))
        }
        connections[connection] = ConnectionState(
            service: name, generation: placed.generation, serviceIndex: index, layout: serviceLayout, key: key,
            backend: placed.backend)
        return .connect(placed.target)
    }

    mutating func backendConnectFailed(_ connection: ConnectionID, reason: String) -> [Action] {
        guard var placing = connections[connection], !placing.established else { return [] }
        updateCounters(placing) { $0.errors += 1 }
        if let state = services[placing.service], state.generation == placing.generation {
            state.balancer.peek(state.settings.balance, state.backends, key: placing.key, random: &random, into: &order)
            for index in order where !placing.tried(state.backends[index].id) {
                placing.earlier.append(placing.backend)
                placing.backend = state.backends[index].id
                connections[connection] = placing
                return [.connectBackend(connection, state.target(at: index, forRequest: placing.isRequest))]
            }
        }
        connections[connection] = nil
        if placing.isRequest {
            updateOwn(placing) {
                $0.httpActive -= 1
                $0.httpConnections += 1
                $0.httpErrors += 1
                $0.httpResponses.count(502)
            }
            return [.answerRequest(connection, .allBackendsFailed(service: placing.service, lastError: reason))]
        }
        return [.closeClient(connection, .allBackendsFailed(service: placing.service, lastError: reason))]
    }

    mutating func backendConnected(_ connection: ConnectionID) {
        // Found once and changed in place: every report of every request
        // comes through here (a lookup and a store hashed the id twice).
        guard let slot = connections.index(forKey: connection), !connections.values[slot].established else { return }
        connections.values[slot].established = true
        let placing = connections.values[slot]
        if placing.isRequest {
            // Off the service's own count, onto the backend's: one lookup of the service.
            guard let index = serviceIndex(of: placing) else { return }
            services.values[index].countOwn(generation: placing.generation) { $0.httpActive -= 1 }
            services.values[index].count(generation: placing.generation, backend: placing.backend) {
                $0.httpConnections += 1
                $0.httpActive += 1
            }
        } else {
            updateCounters(placing) {
                $0.connections += 1
                $0.active += 1
            }
        }
    }

    mutating func bytesTransferred(_ connection: ConnectionID, sent: Int, received: Int) {
        guard let placing = connections[connection], placing.established else { return }
        updateCounters(placing) {
            $0.sent += sent
            $0.received += received
        }
    }

    /// Counts on the service's own counters, if it is still the same service.
    mutating func updateOwn(_ connection: ConnectionState, _ update: (inout Counters) -> Void) {
        guard let index = serviceIndex(of: connection) else { return }
        services.values[index].countOwn(generation: connection.generation, update)
    }

    mutating func connectionClosed(_ connection: ConnectionID) {
        connectionEnded(connection, sent: 0, received: 0)
    }

    /// A connection ended after moving `sent` bytes to its backend and
    /// `received` from it since the last report: the same as handling
    /// `.bytesTransferred`, then `.connectionClosed`, with one lookup, for
    /// the drivers' hot path.
    public mutating func connectionEnded(_ connection: ConnectionID, sent: Int, received: Int) {
        guard let placing = connections.removeValue(forKey: connection) else { return }
        if placing.isRequest {
            finish(placing, .clientGone, sent: sent, received: received)
        } else if placing.established {
            updateCounters(placing) {
                $0.sent += sent
                $0.received += received
                $0.active -= 1
            }
        }
    }

    /// Counts on the connection's backend if it is still in its service,
    /// else on the service's own counters (it was removed or replaced);
    /// nowhere if the service itself is gone.
    mutating func updateCounters(_ connection: ConnectionState, _ update: (inout Counters) -> Void) {
        guard let index = serviceIndex(of: connection) else { return }
        services.values[index].count(generation: connection.generation, backend: connection.backend, update)
    }

    /// Where the connection's service is in `services`: the position saved
    /// when it was placed while no commit has come since (every report of
    /// every request comes through here, and hashing the name was most of
    /// their cost), else found by name. Either way the caller checks the
    /// generation: the name may now be another service's.
    func serviceIndex(of connection: ConnectionState) -> [String: ServiceState].Index? {
        connection.layout == serviceLayout ? connection.serviceIndex : services.index(forKey: connection.service)
    }
}
