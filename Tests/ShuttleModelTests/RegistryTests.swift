import PropertyBased
import Testing

@testable import ShuttleModel

/// A backend with a health check on the next port.
func checked(_ name: String, _ host: String, weight: Int = 0) -> BackendConfig {
    BackendConfig(name: name, address: "\(host):80", checkAddress: "\(host):81", weight: weight)
}

/// One service "web" on :8000 with checked backends a, b, c, and "db" on :8001.
let twoServices = Config(
    fall: 1, rise: 1,
    services: [
        ServiceConfig(
            name: "web", address: ":8000",
            backends: [checked("a", "10.0.0.1"), checked("b", "10.0.0.2"), checked("c", "10.0.0.3")]),
        ServiceConfig(name: "db", address: ":8001", backends: [checked("primary", "10.0.1.1")]),
    ])

/// Counters as the stats show them.
func counters(_ stats: BackendStats) -> [Int] {
    [stats.connections, stats.active, stats.sent, stats.received, stats.errors]
}

func counters(_ stats: ServiceStats) -> [Int] {
    [stats.connections, stats.active, stats.sent, stats.received, stats.errors]
}

func counters(_ c: Counters) -> [Int] {
    [c.connections, c.active, c.sent, c.received, c.errors]
}

/// A service's totals must be the sum over its backends plus its own counters.
func expectTotalsAreTheSum(_ registry: Registry, _ service: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let stats = registry.stats(service: service), let own = registry.ownCounters(service: service) else {
        Issue.record("no service \(service)", sourceLocation: sourceLocation)
        return
    }
    let sum = stats.backends.map(counters).reduce(counters(own)) { zip($0, $1).map(+) }
    #expect(counters(stats) == sum, "\(service)", sourceLocation: sourceLocation)
}

/// Cases for the placement properties: a balancing method, backend weights,
/// which backends are down, a seed, and a script of steps.
struct PlacementCase: Sendable {
    var method: Balance
    var weights: [Int]
    var down: Set<Int>
    var seed: UInt64
    var steps: [Int]

    var config: Config {
        Config(
            fall: 1, rise: 1,
            services: [
                ServiceConfig(
                    name: "s", address: ":7000", balance: method.rawValue,
                    backends: weights.enumerated().map { i, w in checked("b\(i)", "10.0.0.\(i + 1)", weight: w) })
            ])
    }

    var names: [String] { weights.indices.map { "b\($0)" } }
}

let placementCases = generator { d in
    let n = d.int(1...5)
    return PlacementCase(
        method: d.element(Balance.allCases), weights: (0..<n).map { _ in d.int(0...3) },
        down: Set((0..<n).filter { _ in d.chance(0.3) }), seed: UInt64(d.int(0...1_000_000)),
        steps: (0..<d.int(1...60)).map { _ in d.int(0...99) })
}

extension Harness {
    /// Marks the named backends of service "s" down with one failed check (fall is 1).
    mutating func markDown(_ names: [String], service: String = "s") {
        for name in names {
            guard let id = registry.backendID(service: service, backend: name) else { continue }
            send(.checkResult(id, passed: false))
        }
    }
}

@Suite struct RegistryTests {
    // MARK: Updates

    // Applying the same config a second time asks for nothing but the reply.
    @Test func applyingTheSameConfigTwiceOnlyReplies() async throws {
        await propertyCheck(count: 100, input: ConfigGen.valid) { config in
            var harness = Harness()
            let first = harness.apply(config).replies
            #expect(first.count == 1)
            #expect(first.last?.1 == .applied(config.canonical))
            let again = harness.send(.admin(RequestID(1000), .updateConfig(ConfigUpdate(config))))
            #expect(again == [.reply(RequestID(1000), .applied(config.canonical))])
        }
    }

    // Applying A then B (which names every service of A and sets every field) leaves the config that B alone gives.
    @Test func applyingAThenBLeavesWhatBAloneLeaves() async {
        await propertyCheck(count: 60, input: ConfigGen.validThenFull) { pair in
            var both = Harness()
            #expect(both.apply(pair.first).replies.last?.1 == .applied(pair.first.canonical))
            let second = both.apply(pair.second).replies.last?.1
            var alone = Harness()
            let only = alone.apply(pair.second).replies.last?.1
            #expect(second == only)
            #expect(both.registry.config == alone.registry.config)
            #expect(both.registry.config == pair.second.canonical)
            #expect(both.registry.healthChecks.count == alone.registry.healthChecks.count)
        }
    }

    @Test func aNewServiceIsBoundThenCommitted() throws {
        var harness = Harness()
        let asked = harness.send(.admin(RequestID(1), .updateConfig(ConfigUpdate(twoServices))))
        #expect(asked.binds.map(\.service) == ["db", "web"])
        #expect(asked.binds.map(\.address) == [":8001", ":8000"])
        #expect(harness.registry.isUpdating)
        #expect(harness.registry.config == Config())
        let done = harness.bindAll(asked)
        #expect(!harness.registry.isUpdating)
        #expect(done.startedChecks.count == 4)
        #expect(done.suffix(2) == [.persist(twoServices.canonical), .reply(RequestID(1), .applied(twoServices.canonical))])
        #expect(harness.registry.config == twoServices.canonical)
    }

    @Test func aListenerBindFailureAppliesNothing() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let before = harness.registry.config
        let webListener = try #require(harness.listener("web"))
        var update = twoServices
        update.services[0].address = ":9000"
        update.services.append(ServiceConfig(name: "cache", address: ":9001", backends: [checked("x", "10.0.2.1")]))
        update.services.append(ServiceConfig(name: "queue", address: ":9002"))
        let asked = harness.send(.admin(RequestID(7), .updateConfig(ConfigUpdate(update))))
        let binds = asked.binds
        #expect(binds.map(\.service) == ["cache", "queue", "web"])
        #expect(harness.send(.listenerBound(binds[0].id, address: binds[0].address)) == [])
        #expect(harness.send(.listenerFailed(binds[1].id, reason: "address in use")) == [])
        let last = harness.send(.listenerBound(binds[2].id, address: binds[2].address))
        #expect(
            last == [
                .closeListener(binds[0].id), .closeListener(binds[2].id),
                .reply(RequestID(7), .bindFailed(service: "queue", address: ":9002", network: .tcp, reason: "address in use")),
            ])
        #expect(harness.registry.config == before)
        #expect(harness.listener("web") == webListener)
        #expect(harness.listener("cache") == nil)
        // Nothing of the update runs: no checks, no clients on its listeners.
        #expect(harness.registry.healthChecks.count == 4)
        #expect(
            harness.send(.clientConnected(ConnectionID(1), listener: binds[0].id, key: .none))
                == [.closeClient(ConnectionID(1), .noService)])
    }

    @Test func anInvalidUpdateChangesNothingAndListsEveryProblem() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let before = harness.registry.config
        let update = decode(
            """
            {"fall": -1, "services": [
              {"name": "web", "backends": [{"name": "a", "address": "10.0.0.1:80"}, {"name": "b", "address": "10.0.0.2:80", "weight": -1}]},
              {"name": "_x", "address": ":9000"},
              {"name": "new"},
              {"name": "db", "address": ":8000"}]}
            """)
        let actions = harness.send(.admin(RequestID(3), .updateConfig(try #require(update.value))))
        #expect(actions.count == 1)
        guard case .reply(RequestID(3), .rejected(let problems))? = actions.first else {
            Issue.record("not rejected: \(actions)")
            return
        }
        #expect(
            Set(problems.map(\.path)) == [
                "fall", "services[0].backends[1].weight", "services[1].name", "services[2].address", "services[3].address",
            ])
        #expect(harness.registry.config == before)
        #expect(!harness.registry.isUpdating)
    }

    @Test func aServiceMovedOntoAnothersAddressIsRejected() {
        var harness = Harness()
        harness.apply(twoServices)
        // "zeta" sorts after "db", whose address it asks for.
        for name in ["aaa", "zeta"] {
            let actions = harness.admin(.upsertService(name: name, ServiceUpdate(ServiceConfig(address: ":8001"), present: [])))
            #expect(actions.binds == [], "\(name)")
            if case .rejected(let problems)? = actions.replies.first?.1 {
                #expect(problems.map(\.path) == ["address"], "\(name)")
            } else {
                Issue.record("\(name) on db's address: \(actions)")
            }
            #expect(harness.registry.config.service(named: name) == nil)
        }
    }

    @Test func anUnchangedBackendKeepsItsIDCountersAndCheck() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let a = try #require(harness.registry.backendID(service: "web", backend: "a"))
        let b = try #require(harness.registry.backendID(service: "web", backend: "b"))
        let (client, placed) = harness.connect("web")
        #expect(placed.targets.map(\.name) == ["a"])
        harness.send(.backendConnected(client))
        harness.send(.bytesTransferred(client, sent: 10, received: 20))
        let aBefore = try #require(harness.registry.stats(service: "web", backend: "a"))
        let totalBefore = try #require(harness.registry.stats(service: "web"))

        var update = twoServices
        update.services[0].backends[0].weight = 1  // 0 means 1: still the same backend
        update.services[0].backends[1].address = "10.0.0.22:80"
        let actions = harness.apply(update)

        #expect(harness.registry.backendID(service: "web", backend: "a") == a)
        let newB = try #require(harness.registry.backendID(service: "web", backend: "b"))
        #expect(newB != b)
        #expect(actions.stoppedChecks == [b])
        #expect(actions.retiredBackends == [b], "the replaced backend's idle connections are closed, a's kept")
        #expect(actions.startedChecks.map(\.backend) == [newB])
        #expect(actions.startedChecks.first?.address == "10.0.0.2:81")
        #expect(actions.binds == [] && actions.closedListeners == [])
        #expect(harness.registry.stats(service: "web", backend: "a") == aBefore)
        #expect(counters(try #require(harness.registry.stats(service: "web"))) == counters(totalBefore))
        // The open connection still counts on a.
        harness.send(.bytesTransferred(client, sent: 1, received: 2))
        harness.send(.connectionClosed(client))
        let aAfter = try #require(harness.registry.stats(service: "web", backend: "a"))
        #expect(counters(aAfter) == [1, 0, 11, 22, 0])
        expectTotalsAreTheSum(harness.registry, "web")
    }

    @Test func aReplacedBackendsCountersMoveToItsService() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let (client, _) = harness.connect("web")
        harness.send(.backendConnected(client))
        harness.send(.bytesTransferred(client, sent: 5, received: 6))
        var update = twoServices
        update.services[0].backends[0].address = "10.0.0.11:80"
        harness.apply(update)
        #expect(counters(try #require(harness.registry.stats(service: "web", backend: "a"))) == [0, 0, 0, 0, 0])
        #expect(counters(try #require(harness.registry.ownCounters(service: "web"))) == [1, 1, 5, 6, 0])
        harness.send(.bytesTransferred(client, sent: 1, received: 1))
        harness.send(.connectionClosed(client))
        #expect(counters(try #require(harness.registry.stats(service: "web"))) == [1, 0, 6, 7, 0])
        expectTotalsAreTheSum(harness.registry, "web")
    }

    /// Connections find their service by where it was when they were
    /// placed, until a commit: then by name (and only if it is the same
    /// service, its generation).
    @Test func countersFollowTheServiceWhenTheTableGrows() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let (web, _) = harness.connect("web")
        let (db, _) = harness.connect("db")
        for client in [web, db] { harness.send(.backendConnected(client)) }
        // Forty more services: the table grows and every entry moves.
        var bigger = twoServices
        for i in 0..<40 {
            bigger.services.append(ServiceConfig(name: "s\(i)", address: ":\(9000 + i)", backends: [checked("x", "10.0.2.\(i)")]))
        }
        harness.apply(bigger)
        harness.send(.bytesTransferred(web, sent: 3, received: 4))
        harness.send(.bytesTransferred(db, sent: 5, received: 6))
        #expect(counters(try #require(harness.registry.stats(service: "web", backend: "a"))) == [1, 1, 3, 4, 0])
        #expect(counters(try #require(harness.registry.stats(service: "db", backend: "primary"))) == [1, 1, 5, 6, 0])
        // (A service removed and made again under its name: see
        // aConnectionOfARemovedServiceDoesNotCountOnOneRecreatedWithItsName.)
        for client in [web, db] { harness.send(.connectionClosed(client)) }
        #expect(counters(try #require(harness.registry.stats(service: "web"))) == [1, 0, 3, 4, 0])
        #expect(counters(try #require(harness.registry.stats(service: "db"))) == [1, 0, 5, 6, 0])
        for service in bigger.services.map(\.name) { expectTotalsAreTheSum(harness.registry, service) }
    }

    @Test func changingTheCheckIntervalRestartsChecksUnderTheSameIDs() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let ids = try ["a", "b", "c"].map { try #require(harness.registry.backendID(service: "web", backend: $0)) }
        let actions = harness.admin(.upsertService(name: "web", ServiceUpdate(ServiceConfig(checkInterval: 750), present: [])))
        #expect(Set(actions.stoppedChecks) == Set(ids))
        #expect(Set(actions.startedChecks.map(\.backend)) == Set(ids))
        #expect(actions.startedChecks.allSatisfy { $0.interval == 750 })
        #expect(actions.retiredBackends == [], "the same backends: their connections stay")
    }

    @Test func changingAServicesAddressBindsANewListenerAndClosesTheOld() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let old = try #require(harness.listener("web"))
        let actions = harness.admin(.upsertService(name: "web", ServiceUpdate(ServiceConfig(address: ":8100"), present: [])))
        let new = try #require(harness.listener("web"))
        #expect(actions.binds.map(\.id) == [new])
        #expect(actions.closedListeners == [old])
        #expect(actions.stoppedChecks == [] && actions.startedChecks == [])
        #expect(actions.retiredBackends == [])
        #expect(harness.send(.clientConnected(ConnectionID(50), listener: old, key: .none)) == [.closeClient(ConnectionID(50), .noService)])
        #expect(harness.connect("web").1.targets.count == 1)
    }

    @Test func removingAServiceClosesItsListenerAndStopsItsChecks() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let listener = try #require(harness.listener("web"))
        let ids = try ["a", "b", "c"].map { try #require(harness.registry.backendID(service: "web", backend: $0)) }
        let actions = harness.admin(.removeService(name: "web"))
        #expect(actions.closedListeners == [listener])
        #expect(actions.stoppedChecks == ids)
        #expect(actions.retiredBackends == ids)
        #expect(actions.binds == [] && actions.startedChecks == [])
        #expect(actions.replies.map(\.1) == [.applied(twoServices.removingService("web").canonical)])
        #expect(harness.registry.config.service(named: "web") == nil)
        #expect(harness.registry.stats(service: "web") == nil)
        #expect(harness.registry.healthChecks.map(\.service) == ["db"])
        #expect(harness.send(.clientConnected(ConnectionID(9), listener: listener, key: .none)) == [.closeClient(ConnectionID(9), .noService)])
        #expect(harness.connect("db").1.targets.map(\.name) == ["primary"])
    }

    @Test func unknownServicesAndBackendsAreNotFound() {
        var harness = Harness()
        harness.apply(twoServices)
        let before = harness.registry.config
        for command in [
            AdminCommand.removeService(name: "nope"), .removeBackend(service: "nope", name: "a"),
            .removeBackend(service: "web", name: "nope"), .upsertBackend(service: "nope", name: "a", backend("a")),
        ] {
            let replies = harness.admin(command).replies
            if case .notFound? = replies.first?.1 {} else { Issue.record("\(command): \(replies)") }
        }
        #expect(harness.registry.config == before)
    }

    @Test func upsertingABackendChecksItsNameAndTransport() {
        var harness = Harness()
        harness.apply(twoServices)
        let mismatch = harness.admin(.upsertBackend(service: "web", name: "d", backend("e")))
        let udp = harness.admin(.upsertBackend(service: "web", name: "d", BackendConfig(address: "10.0.0.4:80", network: "udp")))
        for replies in [mismatch.replies, udp.replies] {
            if case .rejected(let problems)? = replies.first?.1 {
                #expect(problems.count == 1)
            } else {
                Issue.record("not rejected: \(replies)")
            }
        }
        let added = harness.admin(.upsertBackend(service: "web", name: "d", BackendConfig(address: "10.0.0.4:80")))
        #expect(added.replies.count == 1)
        #expect(harness.registry.config.service(named: "web")?.backends.map(\.name) == ["a", "b", "c", "d"])
    }

    @Test func adminRequestsWaitingForBindsAreAnsweredInOrder() throws {
        var harness = Harness()
        let first = harness.send(.admin(RequestID(1), .updateConfig(ConfigUpdate(Config(services: [twoServices.services[0]])))))
        let l1 = try #require(first.binds.first)
        #expect(harness.send(.admin(RequestID(2), .upsertService(name: "db", ServiceUpdate(twoServices.services[1])))) == [])
        #expect(harness.send(.admin(RequestID(3), .removeService(name: "nope"))) == [])
        #expect(harness.send(.admin(RequestID(4), .removeBackend(service: "web", name: "c"))) == [])
        let afterFirst = harness.send(.listenerBound(l1.id, address: l1.address))
        // The first is answered, then the second starts and waits for its own listener.
        #expect(afterFirst.replies.map(\.0) == [RequestID(1)])
        let l2 = try #require(afterFirst.binds.first)
        #expect(l2.service == "db")
        #expect(afterFirst.last == .bindListener(l2))
        let rest = harness.send(.listenerBound(l2.id, address: l2.address))
        #expect(rest.replies.map(\.0) == [RequestID(2), RequestID(3), RequestID(4)])
        if case .notFound? = rest.replies.dropFirst().first?.1 {} else { Issue.record("request 3: \(rest.replies)") }
        #expect(harness.registry.config.services.map(\.name) == ["db", "web"])
        #expect(harness.registry.config.service(named: "web")?.backends.map(\.name) == ["a", "b"])
    }

    @Test func clientsOfAListenerNotYetCommittedAreRefused() throws {
        var harness = Harness()
        let asked = harness.send(.admin(RequestID(1), .updateConfig(ConfigUpdate(twoServices))))
        let listener = try #require(asked.binds.first)
        harness.send(.listenerBound(listener.id, address: listener.address))
        #expect(harness.send(.clientConnected(ConnectionID(1), listener: listener.id, key: .none)) == [.closeClient(ConnectionID(1), .noService)])
    }

    // MARK: Connections

    @Test func aClientGoesToTheBalancersFirstChoiceAndFallsBackInOrder() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let (client, placed) = harness.connect("web")
        #expect(placed.targets.map(\.name) == ["a"])
        #expect(placed.targets.first?.address == "10.0.0.1:80")
        let second = harness.send(.backendConnectFailed(client, reason: "refused"))
        #expect(second.targets.map(\.name) == ["b"])
        let third = harness.send(.backendConnectFailed(client, reason: "refused"))
        #expect(third.targets.map(\.name) == ["c"])
        let last = harness.send(.backendConnectFailed(client, reason: "timed out"))
        #expect(last == [.closeClient(client, .allBackendsFailed(service: "web", lastError: "timed out"))])
        #expect(harness.registry.openConnections == 0)
        for name in ["a", "b", "c"] {
            #expect(harness.registry.stats(service: "web", backend: name)?.errors == 1)
        }
    }

    @Test func aServiceWithOneBackendTakesEveryClient() {
        var harness = Harness()
        harness.apply(Config(services: [ServiceConfig(name: "one", address: ":7100", backends: [backend("only")])]))
        let placed = (0..<4).map { _ in harness.connect("one").1 }
        #expect(placed.map { $0.targets.map(\.name) } == [["only"], ["only"], ["only"], ["only"]])
    }

    @Test func aServiceWithNoBackendUpRefusesClients() throws {
        var harness = Harness()
        harness.apply(twoServices)
        harness.markDown(["a", "b", "c"], service: "web")
        let (client, actions) = harness.connect("web")
        #expect(actions == [.closeClient(client, .noBackend(service: "web"))])
        #expect(harness.registry.ownCounters(service: "web")?.errors == 1)
        expectTotalsAreTheSum(harness.registry, "web")
    }

    @Test func aTargetCarriesTheServicesTimeouts() throws {
        var harness = Harness()
        var config = twoServices
        config.connectTimeout = 100
        config.services[0].clientTimeout = 200
        config.services[0].serverTimeout = 300
        harness.apply(config)
        let target = try #require(harness.connect("web").1.targets.first)
        #expect(target.connectTimeout == 100 && target.clientTimeout == 200 && target.serverTimeout == 300)
        #expect(target.network == .tcp && target.service == "web")
    }

    // A new client is sent to the first choice of the service's balancer (a mirror balancer fed the same loads).
    @Test func aNewClientGoesToTheBalancersFirstChoice() async throws {
        await propertyCheck(count: 150, input: placementCases) { c in
            var harness = Harness(seed: c.seed)
            harness.apply(c.config)
            var loads = c.config.services[0].backends.map { BackendLoad(name: $0.name, weight: $0.effectiveWeight) }
            var mirror = Balancer()
            mirror.backendsChanged(loads)
            var random = SeededGenerator(seed: c.seed)
            var open: [(ConnectionID, Int)] = []
            for step in c.steps {
                if step < 35, !open.isEmpty {
                    let (id, index) = open.remove(at: step % open.count)
                    harness.send(.connectionClosed(id))
                    loads[index].active -= 1
                    continue
                }
                let key = BalanceKey(UInt64(step))
                let expected = mirror.choose(c.method, loads, key: key, random: &random).map { loads[$0].name }
                let (id, actions) = harness.connect("s", key: key)
                #expect(actions.targets.first?.name == expected, "\(c.method) loads \(loads)")
                guard let name = actions.targets.first?.name, let index = loads.firstIndex(where: { $0.name == name }) else {
                    continue
                }
                harness.send(.backendConnected(id))
                loads[index].active += 1
                open.append((id, index))
            }
        }
    }

    // A client whose connects fail tries every up backend once, never a down one, then is closed.
    @Test func aFailingClientTriesEveryUpBackendOnceThenIsClosed() async throws {
        await propertyCheck(count: 150, input: placementCases) { c in
            var harness = Harness(seed: c.seed)
            harness.apply(c.config)
            harness.markDown(c.down.map { "b\($0)" })
            let up = Set(c.names.indices.filter { !c.down.contains($0) }.map { "b\($0)" })
            let (client, placed) = harness.connect("s", key: BalanceKey(c.seed))
            var actions = placed
            var tried: [String] = []
            while let target = actions.targets.first, tried.count <= c.names.count {
                tried.append(target.name)
                actions = harness.send(.backendConnectFailed(client, reason: "refused by \(target.name)"))
            }
            #expect(tried.count == Set(tried).count, "tried \(tried)")
            #expect(Set(tried) == up)
            let expected: CloseReason =
                up.isEmpty ? .noBackend(service: "s") : .allBackendsFailed(service: "s", lastError: "refused by \(tried.last ?? "")")
            #expect(actions == [.closeClient(client, expected)])
            for name in c.names {
                #expect(harness.registry.stats(service: "s", backend: name)?.errors == (up.contains(name) ? 1 : 0))
            }
            #expect(harness.registry.openConnections == 0)
            expectTotalsAreTheSum(harness.registry, "s")
        }
    }

    // Counters follow the events: connections, active, bytes and errors per backend, and totals are their sum plus the service's own.
    @Test func countersFollowTheEvents() async throws {
        await propertyCheck(count: 150, input: placementCases) { c in
            var harness = Harness(seed: c.seed)
            harness.apply(c.config)
            harness.markDown(c.down.map { "b\($0)" })
            var expected = Dictionary(uniqueKeysWithValues: c.names.map { ($0, Counters()) })
            var own = Counters()
            var open: [ConnectionID: (backend: String, established: Bool)] = [:]
            for (n, step) in c.steps.enumerated() {
                let ids = open.keys.sorted()
                let pick = ids.isEmpty ? nil : ids[step % ids.count]
                switch step % 6 {
                case 0, 1:
                    let (id, actions) = harness.connect("s", key: BalanceKey(UInt64(n)))
                    if let target = actions.targets.first {
                        open[id] = (target.name, false)
                    } else {
                        #expect(actions.closedClients == [.noBackend(service: "s")])
                        own.errors += 1
                    }
                case 2:
                    guard let id = pick, let conn = open[id] else { continue }
                    harness.send(.backendConnected(id))
                    if !conn.established {
                        expected[conn.backend]!.connections += 1
                        expected[conn.backend]!.active += 1
                        open[id]!.established = true
                    }
                case 3:
                    guard let id = pick, let conn = open[id] else { continue }
                    let actions = harness.send(.backendConnectFailed(id, reason: "refused"))
                    if conn.established {
                        #expect(actions == [])
                    } else {
                        expected[conn.backend]!.errors += 1
                        if let next = actions.targets.first { open[id]!.backend = next.name } else { open[id] = nil }
                    }
                case 4:
                    guard let id = pick, let conn = open[id] else { continue }
                    let (sent, received) = (step * 7, step * 13)
                    harness.send(.bytesTransferred(id, sent: sent, received: received))
                    if conn.established {
                        expected[conn.backend]!.sent += sent
                        expected[conn.backend]!.received += received
                    }
                default:
                    if (step / 6) % 2 == 0, let id = pick, let conn = open[id] {
                        harness.send(.connectionClosed(id))
                        if conn.established { expected[conn.backend]!.active -= 1 }
                        open[id] = nil
                    } else if let id = harness.registry.backendID(service: "s", backend: c.names[step % c.names.count]) {
                        // Health flips change where clients go, not what was counted.
                        harness.send(.checkResult(id, passed: step % 4 == 1))
                    }
                }
                for name in c.names {
                    let stats = try #require(harness.registry.stats(service: "s", backend: name))
                    #expect(counters(stats) == counters(expected[name]!), "\(name) after step \(n)")
                }
                #expect(counters(try #require(harness.registry.ownCounters(service: "s"))) == counters(own))
                expectTotalsAreTheSum(harness.registry, "s")
                #expect(harness.registry.openConnections == open.count)
            }
        }
    }

    @Test func aRemovedBackendIsNeverChosen() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let (early, placed) = harness.connect("web")  // goes to a
        let (onB, placedB) = harness.connect("web")  // goes to b
        #expect(placed.targets.map(\.name) == ["a"])
        #expect(placedB.targets.map(\.name) == ["b"])
        harness.send(.backendConnected(onB))
        harness.admin(.removeBackend(service: "web", name: "b"))
        var chosen: [String] = []
        for _ in 0..<12 {
            let (client, actions) = harness.connect("web")
            chosen += actions.targets.map(\.name)
            chosen += harness.send(.backendConnectFailed(client, reason: "x")).targets.map(\.name)
            chosen += harness.send(.backendConnectFailed(client, reason: "x")).targets.map(\.name)
        }
        chosen += harness.send(.backendConnectFailed(early, reason: "x")).targets.map(\.name)
        #expect(!chosen.contains("b"))
        #expect(Set(chosen) == ["a", "c"])
        // The connection to the removed backend ends without unbalancing the totals.
        harness.send(.connectionClosed(onB))
        #expect(harness.registry.stats(service: "web")?.active == 0)
        expectTotalsAreTheSum(harness.registry, "web")
    }

    @Test func aConnectionOfARemovedServiceDoesNotCountOnOneRecreatedWithItsName() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let (client, _) = harness.connect("web")
        harness.send(.backendConnected(client))
        harness.admin(.removeService(name: "web"))
        harness.apply(twoServices)
        harness.send(.bytesTransferred(client, sent: 100, received: 100))
        harness.send(.connectionClosed(client))
        let stats = try #require(harness.registry.stats(service: "web"))
        #expect(counters(stats) == [0, 0, 0, 0, 0])
    }

    // MARK: Health

    @Test func checkResultsMarkABackendDownAfterFallAndUpAfterRise() throws {
        var harness = Harness()
        var config = twoServices
        config.services[0].fall = 2
        config.services[0].rise = 3
        harness.apply(config)
        let a = try #require(harness.registry.backendID(service: "web", backend: "a"))
        #expect(harness.send(.checkResult(a, passed: false)) == [])
        #expect(harness.registry.isUp(service: "web", backend: "a") == true)
        #expect(harness.send(.checkResult(a, passed: false)) == [.backendHealthChanged(a, service: "web", backend: "a", isUp: false)])
        #expect(harness.registry.isUp(service: "web", backend: "a") == false)
        #expect(harness.connect("web").1.targets.map(\.name) == ["b"])
        #expect(harness.send(.checkResult(a, passed: true)) == [])
        #expect(harness.send(.checkResult(a, passed: true)) == [])
        #expect(harness.send(.checkResult(a, passed: true)) == [.backendHealthChanged(a, service: "web", backend: "a", isUp: true)])
        #expect(harness.registry.isUp(service: "web", backend: "a") == true)
        let stats = try #require(harness.registry.stats(service: "web", backend: "a"))
        #expect(stats.checkSuccess == 3 && stats.checkFail == 2)
        #expect(stats.up)
    }

    @Test func riseAndFallAreInheritedFromTheGlobals() throws {
        var harness = Harness()
        var config = twoServices
        config.fall = 3
        harness.apply(config)
        let primary = try #require(harness.registry.backendID(service: "db", backend: "primary"))
        #expect(harness.send(.checkResult(primary, passed: false)) == [])
        #expect(harness.send(.checkResult(primary, passed: false)) == [])
        #expect(harness.send(.checkResult(primary, passed: false)).healthChanges.count == 1)
        #expect(harness.registry.stats(service: "db")?.fall == 3)
    }

    @Test func aResultForAReplacedBackendsOldIDIsIgnored() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let old = try #require(harness.registry.backendID(service: "web", backend: "b"))
        var update = twoServices
        update.services[0].backends[1].checkAddress = "10.0.0.2:82"
        harness.apply(update)
        let new = try #require(harness.registry.backendID(service: "web", backend: "b"))
        #expect(new != old)
        for _ in 0..<3 { #expect(harness.send(.checkResult(old, passed: false)) == []) }
        #expect(harness.registry.isUp(service: "web", backend: "b") == true)
        let stats = try #require(harness.registry.stats(service: "web", backend: "b"))
        #expect(stats.checkFail == 0 && stats.checkSuccess == 0)
        #expect(harness.send(.checkResult(new, passed: false)).healthChanges.count == 1)
    }

    @Test func aResultForARemovedOrUncheckedBackendIsIgnored() throws {
        var harness = Harness()
        var config = twoServices
        config.services[1].backends = [backend("unchecked")]
        harness.apply(config)
        let unchecked = try #require(harness.registry.backendID(service: "db", backend: "unchecked"))
        #expect(harness.send(.checkResult(unchecked, passed: false)) == [])
        #expect(harness.registry.isUp(service: "db", backend: "unchecked") == true)
        let c = try #require(harness.registry.backendID(service: "web", backend: "c"))
        harness.admin(.removeBackend(service: "web", name: "c"))
        #expect(harness.send(.checkResult(c, passed: false)) == [])
        #expect(harness.send(.checkResult(BackendID(9999), passed: false)) == [])
    }

    @Test func aNewBackendStartsUpWithItsCheckRunning() throws {
        var harness = Harness()
        harness.apply(twoServices)
        let checks = harness.registry.healthChecks
        #expect(checks.map(\.name).sorted() == ["a", "b", "c", "primary"])
        let a = try #require(checks.first { $0.name == "a" })
        #expect(a.address == "10.0.0.1:81" && a.interval == Defaults.checkInterval && a.timeout == Defaults.checkTimeout)
        #expect(["a", "b", "c"].allSatisfy { harness.registry.isUp(service: "web", backend: $0) == true })
    }
}
