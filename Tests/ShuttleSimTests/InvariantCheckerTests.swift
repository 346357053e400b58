import ShuttleModel
import ShuttleSim
import Testing

/// Each invariant's check catches a violation made by hand: the model runs
/// for real, and the checker is shown what a buggy model (or driver) would do.
@Suite struct InvariantCheckerTests {
    func rig() -> Rig {
        var rig = Rig()
        #expect(rig.admin(.updateConfig(ConfigUpdate(testConfig)), expect: .valid) == nil)
        return rig
    }

    @Test func aCorrectModelBreaksNothing() {
        var rig = rig()
        for _ in 0..<20 {
            let (id, target, violation) = rig.place("web")
            #expect(violation == nil)
            #expect(target != nil)
            #expect(rig.send(.backendConnected(id)).violation == nil)
            #expect(rig.send(.bytesTransferred(id, sent: 10, received: 20)).violation == nil)
            #expect(rig.send(.connectionClosed(id)).violation == nil)
        }
        #expect(rig.checker.finish(rig.registry) == nil)
    }

    @Test func aConnectionToARemovedBackendIsCaught() {
        var rig = rig()
        let b = rig.target("web", "b")
        #expect(rig.admin(.removeBackend(service: "web", name: "b"), expect: .valid) == nil)
        let id = rig.connectionID()
        let v = rig.forge(.clientConnected(id, listener: rig.listener("web"), key: .none), [.connectBackend(id, b)])
        #expect(v?.invariant == .removedBackend)
    }

    @Test func aConnectionToADownBackendIsCaught() {
        var rig = rig()
        let a = rig.target("web", "a")
        #expect(rig.send(.checkResult(a.id, passed: false)).violation == nil)  // fall 1: down
        #expect(rig.registry.isUp(service: "web", backend: "a") == false)
        let id = rig.connectionID()
        let v = rig.forge(.clientConnected(id, listener: rig.listener("web"), key: .none), [.connectBackend(id, a)])
        #expect(v?.invariant == .downBackend)
    }

    @Test func turningAClientAwayWhileABackendIsUpIsCaught() {
        var rig = rig()
        let id = rig.connectionID()
        let v = rig.forge(
            .clientConnected(id, listener: rig.listener("web"), key: .none), [.closeClient(id, .noBackend(service: "web"))])
        #expect(v?.invariant == .downBackend)
    }

    @Test func roundRobinIgnoringWeightsIsCaught() {
        var rig = rig()
        let a = rig.target("web", "a")
        var violation: Violation?
        for _ in 0..<3 where violation == nil {
            let id = rig.connectionID()
            violation = rig.forge(.clientConnected(id, listener: rig.listener("web"), key: .none), [.connectBackend(id, a)])
        }
        #expect(violation?.invariant == .weightedShares)
    }

    @Test func leastConnectionsChoosingTheBusiestIsCaught() {
        var rig = rig()
        let (first, target, _) = rig.place("api")
        #expect(rig.send(.backendConnected(first)).violation == nil)
        let id = rig.connectionID()
        let v = rig.forge(.clientConnected(id, listener: rig.listener("api"), key: .none), [.connectBackend(id, target!)])
        #expect(v?.invariant == .leastConnections)
    }

    @Test func anActiveCountNotTakenDownIsCaught() {
        var rig = rig()
        let (id, _, _) = rig.place("web")
        #expect(rig.send(.backendConnected(id)).violation == nil)
        // The driver says the connection closed; the model does not take it off.
        let v = rig.show(.connectionClosed(id), [])
        #expect(v?.invariant == .counters)
    }

    @Test func anAppliedChangeNotPersistedIsCaught() {
        var rig = rig()
        let id = rig.requestID()
        var update = ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: [])
        update.global.fall = 3
        var changed = rig.registry.config
        changed.fall = 3
        let v = rig.forge(.admin(id, .updateConfig(update)), [.reply(id, .applied(changed))])
        #expect(v?.invariant == .persistedState)
    }

    @Test func aRestartThatLosesTheConfigIsCaught() {
        var rig = rig()
        #expect(rig.restart() == nil)
        var partial = testConfig
        partial.services.removeLast()
        let v = rig.admin(.updateConfig(ConfigUpdate(partial)))
        #expect(v?.invariant == .restoredConfig)
    }

    @Test func anUnchangedUpdateThatDoesSomethingIsCaught() {
        var rig = rig()
        let id = rig.requestID()
        let config = rig.registry.config
        let v = rig.forge(.admin(id, .updateConfig(ConfigUpdate(config))), [.persist(config), .reply(id, .applied(config))])
        #expect(v?.invariant == .undisturbed)
    }

    @Test func aMergeThatDropsAFieldIsCaught() {
        var rig = rig()
        let id = rig.requestID()
        var update = ServiceConfig(name: "web")
        update.fall = 3
        let dropped = rig.registry.config  // as if the merge dropped `fall`
        let v = rig.forge(
            .admin(id, .upsertService(name: "web", ServiceUpdate(update, present: []))),
            [.persist(dropped), .reply(id, .applied(dropped))])
        #expect(v?.invariant == .mergedConfig)
    }

    @Test func anInvalidUpdateAppliedIsCaught() {
        var rig = rig()
        let v = rig.admin(
            .upsertBackend(service: "web", name: "d", BackendConfig(address: "10.0.1.9:80")), expect: .invalid)
        #expect(v?.invariant == .invalidUpdate)
    }

    @Test func aValidUpdateRejectedIsCaught() {
        var rig = rig()
        let v = rig.admin(
            .upsertBackend(service: "web", name: "d", BackendConfig(address: "10.0.1.9:80", weight: 5000)), expect: .valid)
        #expect(v?.invariant == .validUpdate)
    }

    @Test func healthIgnoringFallIsCaught() {
        var rig = rig()
        let a = rig.target("web", "a")
        let v = rig.forge(.checkResult(a.id, passed: false), [])
        #expect(v?.invariant == .health)
    }

    @Test func aServedHostAnswered404IsCaught() {
        var rig = rig()
        let id = rig.connectionID()
        let v = rig.forge(
            .requestReceived(id, HTTPRequest(host: "WWW.example.com:8080", uri: "/")),
            [.answerRequest(id, .unknownHost("www.example.com"))])
        #expect(v?.invariant == .virtualHosts)
    }

    @Test func aConnectionWithoutADecisionIsCaught() {
        var rig = rig()
        let id = rig.connectionID()
        let v = rig.forge(.clientConnected(id, listener: rig.listener("web"), key: .none), [])
        #expect(v?.invariant == .outcomes)
    }
}
