import PropertyBased
import Testing

@testable import ShuttleModel

/// A config of services named by their virtual hosts.
func vhostConfig(_ hosts: [String: [String]]) -> Config {
    Config(services: hosts.map { ServiceConfig(name: $0.key, address: ":0", virtualHosts: $0.value) })
}

/// Routes `host` (a Host header value) `times` times.
func routes(_ table: inout VirtualHostTable, _ host: String, times: Int = 1, up: Set<String>? = nil) -> [String?] {
    (0..<times).map { _ in
        guard let name = VirtualHostName.fromHostHeader(host) else { return nil }
        return table.route(name) { up?.contains($0) ?? true }
    }
}

@Suite struct VirtualHostTableTests {
    // The byte-wise fast path of a Host header gives what the full parse gives, for every short value.
    @Test func theFastHostPathAgreesWithTheFullParse() {
        let alphabet: [Character] = ["a", "Z", "0", ".", "-", ":", "[", "]", " ", "@", "\u{e9}"]
        var values = [""]
        var checked = 0
        for _ in 1...4 {
            values = values.flatMap { prefix in alphabet.map { prefix + String($0) } }
            for value in values {
                if let fast = VirtualHostName.plainLookupForm(value) {
                    #expect(fast == VirtualHostName.parsedLookupForm(value), "\(value)")
                    checked += 1
                }
            }
        }
        #expect(checked > 100)
    }

    @Test func namesMatchWhateverTheirCase() {
        var table = VirtualHostTable(vhostConfig(["web": ["WWW.Example.com"]]))
        #expect(routes(&table, "www.example.com") == ["web"])
        #expect(routes(&table, "WWW.EXAMPLE.COM") == ["web"])
        #expect(routes(&table, "wWw.ExAmPlE.cOm") == ["web"])
    }

    @Test func thePortOfTheHostHeaderIsStripped() {
        var table = VirtualHostTable(vhostConfig(["web": ["www.example.com"], "v4": ["10.0.0.1"]]))
        #expect(routes(&table, "www.example.com:8080") == ["web"])
        #expect(routes(&table, "www.example.com.:80") == ["web"])
        #expect(routes(&table, " www.example.com ") == ["web"])
        #expect(routes(&table, "10.0.0.1:443") == ["v4"])
    }

    @Test func malformedOrUnknownHostsMatchNothing() {
        var table = VirtualHostTable(vhostConfig(["web": ["www.example.com"]]))
        #expect(routes(&table, "other.example.com") == [nil])
        #expect(routes(&table, "www.example.com:http") == [nil])
        #expect(routes(&table, "user@www.example.com") == [nil])
        #expect(routes(&table, "") == [nil])
        #expect(routes(&table, "example.com") == [nil])
    }

    @Test func anExactNameBeatsAWildcard() {
        var table = VirtualHostTable(vhostConfig(["exact": ["www.example.com"], "wild": ["*.example.com"]]))
        #expect(routes(&table, "www.example.com", times: 3) == ["exact", "exact", "exact"])
        #expect(routes(&table, "api.example.com") == ["wild"])
        #expect(routes(&table, "a.b.example.com") == ["wild"])
    }

    @Test func aWildcardDoesNotMatchItsBareDomain() {
        var table = VirtualHostTable(vhostConfig(["wild": ["*.example.com"]]))
        #expect(routes(&table, "example.com") == [nil])
        #expect(routes(&table, "badexample.com") == [nil])
    }

    @Test func aLongerWildcardBeatsAShorterOne() {
        var table = VirtualHostTable(vhostConfig(["short": ["*.example.com"], "long": ["*.api.EXAMPLE.com"]]))
        #expect(routes(&table, "v1.api.example.com") == ["long"])
        #expect(routes(&table, "www.example.com") == ["short"])
    }

    @Test func servicesSharingANameTakeTurns() {
        var table = VirtualHostTable(vhostConfig(["blue": ["app.example.com"], "green": ["APP.example.com"], "red": ["app.example.com"]]))
        #expect(routes(&table, "app.example.com", times: 6) == ["blue", "green", "red", "blue", "green", "red"])
    }

    @Test func aServiceWithNoBackendUpIsSkipped() {
        var table = VirtualHostTable(vhostConfig(["blue": ["app.example.com"], "green": ["app.example.com"], "red": ["app.example.com"]]))
        #expect(routes(&table, "app.example.com", times: 4, up: ["blue", "red"]) == ["blue", "red", "blue", "red"])
        #expect(routes(&table, "app.example.com", times: 3, up: ["green"]) == ["green", "green", "green"])
    }

    @Test func withNoServiceUpOneIsStillPicked() {
        var table = VirtualHostTable(vhostConfig(["blue": ["app.example.com"], "green": ["app.example.com"]]))
        let picked = routes(&table, "app.example.com", times: 4, up: [])
        #expect(picked.allSatisfy { $0 == "blue" || $0 == "green" })
        #expect(Set(picked.compactMap { $0 }) == ["blue", "green"])
    }

    // Round robin among the services sharing a name: over n x k requests with all up, each serves k.
    @Test func sharedNamesSpreadEvenlyOverTheServicesUp() async {
        let shared = generator { d in
            Pair(ConfigGen.uniqueNames(&d, count: d.int(1...5)) { ConfigGen.validName(&$0) }, d.int(1...4))
        }
        await propertyCheck(count: 100, input: shared, Gen.int(in: 0...31)) { pair, mask in
            let names = pair.first
            var table = VirtualHostTable(vhostConfig(Dictionary(uniqueKeysWithValues: names.map { ($0, ["shared.example.com"]) })))
            let up = Set(names.enumerated().filter { mask & (1 << $0.offset) != 0 }.map(\.element))
            let served = routes(&table, "shared.example.com", times: max(up.count, 1) * pair.second, up: up)
            if up.isEmpty {
                #expect(served.allSatisfy { $0 != nil && names.contains($0!) })
            } else {
                for name in names {
                    #expect(served.filter { $0 == name }.count == (up.contains(name) ? pair.second : 0), "\(name) of \(names), up \(up)")
                }
            }
        }
    }

    @Test func theRegistryRoutesByItsServicesHealth() throws {
        var harness = Harness()
        let checked = BackendConfig(name: "b", address: "10.0.0.1:80", checkAddress: "10.0.0.1:81")
        harness.apply(
            Config(
                fall: 1, rise: 1,
                services: [
                    ServiceConfig(name: "blue", address: ":9001", virtualHosts: ["App.example.com"], backends: [checked]),
                    ServiceConfig(name: "green", address: ":9002", virtualHosts: ["app.example.com", "*.example.com"], backends: [checked]),
                ]))
        #expect((0..<4).map { _ in harness.registry.routeVirtualHost("APP.example.com:80") } == ["blue", "green", "blue", "green"])
        #expect(harness.registry.routeVirtualHost("www.example.com") == "green")
        #expect(harness.registry.routeVirtualHost("nothing.example.org") == nil)
        let blue = try #require(harness.registry.backendID(service: "blue", backend: "b"))
        harness.send(.checkResult(blue, passed: false))
        #expect((0..<3).map { _ in harness.registry.routeVirtualHost("app.example.com") } == ["green", "green", "green"])
    }

    @Test func theRegistryFollowsVirtualHostChanges() {
        var harness = Harness()
        harness.apply(Config(services: [ServiceConfig(name: "blue", address: ":9001", virtualHosts: ["a.example.com"])]))
        #expect(harness.registry.routeVirtualHost("a.example.com") == "blue")
        harness.admin(.upsertService(name: "blue", ServiceUpdate(ServiceConfig(virtualHosts: ["b.example.com"]), present: [.virtualHosts])))
        #expect(harness.registry.routeVirtualHost("a.example.com") == nil)
        #expect(harness.registry.routeVirtualHost("b.example.com") == "blue")
        harness.admin(.removeService(name: "blue"))
        #expect(harness.registry.routeVirtualHost("b.example.com") == nil)
    }
}
