import Foundation
import PropertyBased
import Testing

@testable import ShuttleModel

/// The running config used by the hand-written merge cases.
let runningConfig = Config(
    balance: "LC", checkInterval: 3000, fall: 4, rise: 5, clientTimeout: 100, serverTimeout: 200, connectTimeout: 300,
    httpsRedirect: true,
    services: [
        ServiceConfig(
            name: "web", address: "127.0.0.1:8080", network: "tcp", balance: "RR", checkInterval: 1000, fall: 2, rise: 3,
            clientTimeout: 10, serverTimeout: 20, connectTimeout: 30, httpsRedirect: true,
            virtualHosts: ["www.example.com"], errorPages: ["http://e.com/503.html": [503]],
            backends: [backend("a", "10.0.0.1:80"), backend("b", "10.0.0.2:80")], maintenanceMode: true),
        ServiceConfig(name: "db", address: "127.0.0.1:5432", backends: [backend("primary", "10.0.1.1:5432")]),
    ]
).canonical

/// Merges a JSON update body into `config`, as POST `/_config` does.
func merged(_ config: Config, _ json: String) throws -> Config {
    let decoded = decode(json)
    #expect(decoded.problems == [])
    return config.merging(try #require(decoded.value))
}

@Suite struct MergeTests {
    @Test func zeroGlobalsKeepTheCurrentValues() throws {
        let result = try merged(runningConfig, #"{"services": []}"#)
        #expect(result == runningConfig)
    }

    @Test func nonZeroGlobalsReplaceTheCurrentValues() throws {
        let result = try merged(
            runningConfig,
            #"{"balance": "RR", "check_interval": 1, "fall": 2, "rise": 3, "client_timeout": 4, "server_timeout": 5, "connect_timeout": 6, "https-redirect": false}"#
        )
        var expected = runningConfig
        (expected.balance, expected.checkInterval, expected.fall, expected.rise) = ("RR", 1, 2, 3)
        (expected.clientTimeout, expected.serverTimeout, expected.connectTimeout) = (4, 5, 6)
        expected.httpsRedirect = false
        #expect(result == expected)
    }

    @Test func anAbsentHTTPSRedirectKeepsTheCurrentValue() throws {
        #expect(try merged(runningConfig, #"{"fall": 9}"#).httpsRedirect == true)
        #expect(try merged(runningConfig, #"{"https-redirect": false}"#).httpsRedirect == false)
    }

    @Test func anUpdateRemovesNoServiceItDoesNotName() throws {
        let result = try merged(runningConfig, #"{"services": [{"name": "cache", "address": ":6379"}]}"#)
        #expect(result.services.map(\.name) == ["cache", "db", "web"])
        #expect(result.service(named: "web") == runningConfig.service(named: "web"))
        #expect(result.service(named: "cache") == ServiceConfig(name: "cache", address: ":6379"))
    }

    @Test func setFieldsOfAServiceReplaceAndUnsetOnesStay() throws {
        let result = try merged(runningConfig, #"{"services": [{"name": "web", "address": ":9090", "fall": 7, "balance": "LC"}]}"#)
        var expected = try #require(runningConfig.service(named: "web"))
        expected.address = ":9090"
        expected.fall = 7
        expected.balance = "LC"
        #expect(result.service(named: "web") == expected)
    }

    @Test func flagsTheUpdateLeavesOutAreKept() throws {
        // The original turned maintenance_mode and https-redirect off here.
        let web = try #require(try merged(runningConfig, #"{"services": [{"name": "web", "rise": 9}]}"#).service(named: "web"))
        #expect(web.maintenanceMode)
        #expect(web.httpsRedirect)
        let off = try #require(
            try merged(runningConfig, #"{"services": [{"name": "web", "maintenance_mode": false, "https-redirect": false}]}"#)
                .service(named: "web"))
        #expect(!off.maintenanceMode)
        #expect(!off.httpsRedirect)
    }

    @Test func listsReplaceWhenPresentEvenEmptyAndStayWhenAbsent() throws {
        let kept = try #require(try merged(runningConfig, #"{"services": [{"name": "web"}]}"#).service(named: "web"))
        #expect(kept == runningConfig.service(named: "web"))
        let emptied = try #require(
            try merged(runningConfig, #"{"services": [{"name": "web", "virtual_hosts": [], "error_pages": {}, "backends": []}]}"#)
                .service(named: "web"))
        #expect(emptied.virtualHosts == [])
        #expect(emptied.errorPages == [:])
        #expect(emptied.backends == [])
        let replaced = try #require(
            try merged(runningConfig, #"{"services": [{"name": "web", "backends": [{"name": "c", "address": "10.0.0.3:80"}]}]}"#)
                .service(named: "web"))
        #expect(replaced.backends == [backend("c", "10.0.0.3:80")])
        #expect(replaced.virtualHosts == ["www.example.com"])
    }

    @Test func theMergedConfigIsSortedByName() throws {
        let result = try merged(
            runningConfig,
            #"{"services": [{"name": "zz", "address": ":1", "backends": [{"name": "y", "address": "1.1.1.1:1"}, {"name": "x", "address": "1.1.1.1:2"}]}, {"name": "aa", "address": ":2"}]}"#
        )
        #expect(result.services.map(\.name) == ["aa", "db", "web", "zz"])
        #expect(result.service(named: "zz")?.backends.map(\.name) == ["x", "y"])
    }

    @Test func upsertingABackendReplacesTheOneOfItsName() throws {
        let web = try #require(runningConfig.service(named: "web"))
        let updated = web.upserting(BackendConfig(name: "a", address: "10.0.0.9:80", weight: 3))
        #expect(updated.backends == [BackendConfig(name: "a", address: "10.0.0.9:80", weight: 3), backend("b", "10.0.0.2:80")])
        #expect(web.upserting(backend("0", "10.0.0.8:80")).backends.map(\.name) == ["0", "a", "b"])
    }

    @Test func removingAServiceLeavesTheOthers() {
        #expect(runningConfig.removingService("web").services.map(\.name) == ["db"])
        #expect(runningConfig.removingService("nope") == runningConfig)
    }

    @Test func equalBackendsAreEquivalentOnceDefaultsApply() {
        #expect(backend("a").isEquivalent(to: BackendConfig(name: "a", address: "10.0.0.1:80", network: "tcp", weight: 1)))
        #expect(!backend("a").isEquivalent(to: BackendConfig(name: "a", address: "10.0.0.1:80", weight: 2)))
        #expect(!backend("a").isEquivalent(to: BackendConfig(name: "a", address: "10.0.0.1:80", network: "tcp4")))
        #expect(!backend("a").isEquivalent(to: BackendConfig(name: "a", address: "10.0.0.1:80", checkAddress: "10.0.0.1:81")))
    }

    // An update that carries nothing changes nothing.
    @Test func anEmptyUpdateIsTheIdentity() async {
        await propertyCheck(count: 100, input: ConfigGen.arbitrary) { config in
            let empty = ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: [])
            #expect(config.canonical.merging(empty) == config.canonical)
        }
    }

    // Merging never removes a service: the result names every current service and every updated one.
    @Test func mergingNeverRemovesAService() async {
        await propertyCheck(count: 100, input: ConfigGen.valid, ConfigGen.valid) { current, update in
            let result = current.merging(ConfigUpdate(update))
            #expect(Set(result.services.map(\.name)) == Set(current.services.map(\.name) + update.services.map(\.name)))
        }
    }

    // Merging a config with every field set gives its services and globals exactly, whatever was there.
    @Test func aFullUpdateReplacesEveryFieldOfTheServicesItNames() async {
        await propertyCheck(count: 100, input: ConfigGen.validThenFull) { pair in
            let result = pair.first.merging(ConfigUpdate(pair.second))
            #expect(result == pair.second.canonical)
        }
    }

    // Merging a config into itself changes nothing.
    @Test func mergingAConfigIntoItselfIsTheIdentity() async {
        await propertyCheck(count: 100, input: ConfigGen.arbitrary) { config in
            #expect(config.canonical.merging(ConfigUpdate(config)) == config.canonical)
        }
    }
}
