import Testing

@testable import ShuttleModel

@Suite("Routing HTTP requests")
struct HTTPRequestTests {
    func service(
        _ name: String, hosts: [String], port: Int, configure: (inout ServiceConfig) -> Void = { _ in }
    ) -> ServiceConfig {
        var service = ServiceConfig(
            name: name, address: "127.0.0.1:\(port)", virtualHosts: hosts,
            backends: [BackendConfig(name: "a", address: "10.0.0.1:80")])
        configure(&service)
        return service
    }

    func request(_ harness: inout Harness, host: String?, uri: String = "/", isTLS: Bool = false, proto: String? = nil) -> [Action] {
        let id = ConnectionID(harness.nextConnection)
        harness.nextConnection += 1
        return harness.send(.requestReceived(id, HTTPRequest(host: host, uri: uri, isTLS: isTLS, forwardedProto: proto)))
    }

    @Test("a missing or malformed Host is a bad request; an unknown one is not found")
    func badAndUnknownHosts() {
        var harness = Harness()
        harness.apply(Config(services: [service("s", hosts: ["s.test"], port: 8001)]))
        #expect(request(&harness, host: nil).answers.map(\.status) == [400])
        #expect(request(&harness, host: "s.test:x").answers.map(\.status) == [400])
        #expect(request(&harness, host: "other.test").answers == [.unknownHost("other.test")])
        #expect(request(&harness, host: "S.TEST:80").targets.map(\.service) == ["s"])
    }

    @Test("more than one Host line is a bad request, whatever they say")
    func severalHosts() {
        var harness = Harness()
        harness.apply(Config(services: [service("s", hosts: ["s.test"], port: 8001)]))
        let id = ConnectionID(harness.nextConnection)
        harness.nextConnection += 1
        let actions = harness.send(.requestReceived(id, HTTPRequest(host: "s.test", hostFields: 2, uri: "/")))
        #expect(actions.answers == [.badRequest(reason: "more than one Host header")])
        #expect(HTTPRequest(host: "s.test", uri: "/").hostFields == 1)
        #expect(HTTPRequest(host: nil, uri: "/").hostFields == 0)
    }

    @Test("placeRequest, the drivers' hot path, decides as handling .requestReceived does")
    func placeRequestIsTheEvent() {
        let config = Config(services: [
            service("a", hosts: ["a.test", "*.shared.test"], port: 8001) {
                $0.backends.append(BackendConfig(name: "b", address: "10.0.0.2:80"))
            },
            service("b", hosts: ["*.shared.test"], port: 8002),
            service("m", hosts: ["m.test"], port: 8003) { $0.maintenanceMode = true },
            service("r", hosts: ["r.test"], port: 8004) { $0.httpsRedirect = true },
        ])
        var byEvent = Harness(seed: 7)
        var byCall = Harness(seed: 7)
        byEvent.apply(config)
        byCall.apply(config)
        let hosts: [String?] = ["a.test", "x.shared.test", "m.test", "r.test", "nope.test", nil, "y.shared.test", "a.test"]
        for (n, host) in (hosts + hosts).enumerated() {
            let id = ConnectionID(UInt64(100 + n))
            let request = HTTPRequest(host: host, uri: "/\(n)", key: BalanceKey("10.1.1.\(n % 3)"))
            let event = byEvent.send(.requestReceived(id, request))
            let placement = byCall.registry.placeRequest(id, request)
            #expect(event == [placement.action(for: id)], "\(host ?? "no host")")
        }
        #expect(byEvent.registry.stats(service: "a") == byCall.registry.stats(service: "a"))
        #expect(byEvent.registry.openConnections == byCall.registry.openConnections)
    }

    @Test("an absolute-form target's authority routes the request, not its Host header")
    func absoluteForm() {
        var harness = Harness()
        harness.apply(Config(services: [
            service("a", hosts: ["a.test"], port: 8001), service("b", hosts: ["b.test"], port: 8002),
        ]))
        #expect(request(&harness, host: "a.test", uri: "http://b.test/x").targets.map(\.service) == ["b"])
        #expect(request(&harness, host: "a.test", uri: "https://user@B.test:8443/x?y").targets.map(\.service) == ["b"])
        #expect(request(&harness, host: nil, uri: "http://b.test").targets.map(\.service) == ["b"])
        #expect(request(&harness, host: "a.test", uri: "/r?to=http://b.test/").targets.map(\.service) == ["a"])
        #expect(request(&harness, host: "a.test", uri: "http:///x").answers.map(\.status) == [400])
        #expect(request(&harness, host: "a.test", uri: "http://c.test/").answers == [.unknownHost("c.test")])
    }

    @Test("a request's backend has a time limit for its answer even when server_timeout is unset")
    func defaultServerTimeout() {
        var harness = Harness()
        harness.apply(Config(services: [
            service("unset", hosts: ["u.test"], port: 8001),
            service("set", hosts: ["s.test"], port: 8002) { $0.serverTimeout = 1500 },
        ]))
        #expect(request(&harness, host: "u.test").targets.map(\.serverTimeout) == [Defaults.httpServerTimeout])
        #expect(request(&harness, host: "s.test").targets.map(\.serverTimeout) == [1500])
        // TCP connections keep the config's value: 0 is none.
        #expect(harness.connect("unset").1.targets.map(\.serverTimeout) == [0])
    }

    @Test("https-redirect from the service, the config's global field or the flag; never over TLS or X-Forwarded-Proto: https")
    func redirects() {
        var perService = Harness()
        perService.apply(Config(services: [service("s", hosts: ["s.test"], port: 8001) { $0.httpsRedirect = true }]))
        #expect(request(&perService, host: "s.test:8080", uri: "/a?b").answers == [.redirect(service: "s", location: "https://s.test/a?b")])
        #expect(request(&perService, host: "s.test", isTLS: true).targets.count == 1)
        #expect(request(&perService, host: "s.test", proto: "HTTPS").targets.count == 1)

        var global = Harness()
        global.apply(Config(httpsRedirect: true, services: [service("s", hosts: ["s.test"], port: 8001)]))
        #expect(request(&global, host: "s.test").answers.map(\.status) == [301])

        var flag = Harness(settings: ProxySettings(httpsRedirect: true, httpsPort: 8443))
        flag.apply(Config(services: [service("s", hosts: ["s.test"], port: 8001)]))
        #expect(request(&flag, host: "s.test", uri: "/x").answers == [.redirect(service: "s", location: "https://s.test:8443/x")])
    }

    @Test("maintenance mode answers 503 without a backend")
    func maintenance() {
        var harness = Harness()
        harness.apply(Config(services: [service("m", hosts: ["m.test"], port: 8001) { $0.maintenanceMode = true }]))
        let actions = request(&harness, host: "m.test")
        #expect(actions.answers == [.maintenance(service: "m")])
        #expect(actions.targets.isEmpty)
        #expect(harness.registry.stats(service: "m")?.httpConnections == 1)
    }
}
