import Foundation
import PropertyBased
import Testing

@testable import ShuttleModel

/// Decodes a config document given as text.
func decode(_ json: String) -> Decoded<ConfigUpdate> {
    ConfigCoding.decodeConfig(Data(json.utf8))
}

/// The JSON object of an encoded config, for looking at keys and order.
func jsonObject(_ data: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// Fields of a value whose value is the zero of its type (0, "", false, empty).
func zeroFields(_ value: Any) -> [String] {
    Mirror(reflecting: value).children.compactMap { child in
        let isZero: Bool
        switch child.value {
        case let v as Int: isZero = v == 0
        case let v as String: isZero = v.isEmpty
        case let v as Bool: isZero = !v
        case let v as [Any]: isZero = v.isEmpty
        case let v as [String: [Int]]: isZero = v.isEmpty
        default: isZero = false
        }
        return isZero ? child.label : nil
    }
}

@Suite struct ConfigCodingTests {
    // Encoding then decoding any config gives back its canonical form, with no problem or warning.
    @Test func decodeOfEncodeIsTheIdentity() async throws {
        await propertyCheck(count: 200, input: ConfigGen.arbitrary) { config in
            let decoded = ConfigCoding.decodeConfig(ConfigCoding.encode(config))
            #expect(decoded.problems == [])
            #expect(decoded.warnings == [])
            let value = try #require(decoded.value)
            #expect(value.config == config.canonical)
        }
    }

    // Encoding is stable: the encoding of a decoded encoding is the same bytes.
    @Test func encodingADecodedConfigGivesTheSameBytes() async throws {
        await propertyCheck(count: 100, input: ConfigGen.arbitrary) { config in
            let first = ConfigCoding.encode(config)
            let value = try #require(ConfigCoding.decodeConfig(first).value)
            #expect(ConfigCoding.encode(value.config) == first)
        }
    }

    @Test(arguments: ["original-full.json", "original-minimal.json", "original-vhosts.json"])
    func fixturesDecodeAndValidateWithoutProblems(_ name: String) throws {
        let decoded = ConfigCoding.decodeConfig(try Fixture.data(name))
        #expect(decoded.problems == [])
        #expect(decoded.warnings == [])
        let value = try #require(decoded.value)
        #expect(Validation.validate(value.config) == [])
        #expect(!value.config.services.isEmpty)
    }

    @Test func theFullFixtureHasEveryFieldAsWritten() throws {
        let value = try #require(ConfigCoding.decodeConfig(try Fixture.data("original-full.json")).value)
        let expected = Config(
            balance: "LC", checkInterval: 2000, fall: 3, rise: 4, clientTimeout: 30000, serverTimeout: 60000,
            connectTimeout: 1500, httpsRedirect: true,
            services: [
                ServiceConfig(
                    name: "web", address: "127.0.0.1:8080", network: "tcp", balance: "RR", checkInterval: 1000, fall: 2,
                    rise: 3, clientTimeout: 10000, serverTimeout: 20000, connectTimeout: 500, httpsRedirect: true,
                    virtualHosts: ["www.example.com", "*.example.org"],
                    errorPages: [
                        "http://errors.example.com/4xx.html": [400, 404],
                        "http://errors.example.com/5xx.html": [500, 502, 503],
                    ],
                    backends: [
                        BackendConfig(
                            name: "web-2", address: "10.0.0.2:80", network: "tcp", checkAddress: "10.0.0.2:8081",
                            weight: 3),
                        BackendConfig(
                            name: "web-1", address: "10.0.0.1:80", network: "tcp4", checkAddress: "10.0.0.1:8081",
                            weight: 2),
                    ], maintenanceMode: true),
                ServiceConfig(
                    name: "dns", address: "127.0.0.1:5353", network: "udp", balance: "LC", checkInterval: 7000, fall: 5,
                    rise: 1, clientTimeout: 3000, serverTimeout: 4000, connectTimeout: 250, httpsRedirect: false,
                    virtualHosts: ["dns.example.com"],
                    errorPages: ["https://errors.example.com/maintenance.html": [503]],
                    backends: [
                        BackendConfig(
                            name: "resolver", address: "10.0.1.1:53", network: "udp", checkAddress: "10.0.1.1:5300",
                            weight: 1)
                    ], maintenanceMode: false),
            ])
        #expect(value.config == expected)
        #expect(value.httpsRedirectPresent)
        #expect(value.services.allSatisfy { $0.present == .all })
        // Every field of every kind is set somewhere in the fixture.
        #expect(zeroFields(value.config) == [])
        let services = value.config.services
        for field in zeroFields(services[0]) { #expect(!zeroFields(services[1]).contains(field), "\(field) never set") }
        for backend in services.flatMap(\.backends) { #expect(zeroFields(backend) == [], "\(backend.name)") }
    }

    @Test func theMinimalFixtureIsATCPServiceWithTwoUncheckedBackendsOnLocalhost() throws {
        let value = try #require(ConfigCoding.decodeConfig(try Fixture.data("original-minimal.json")).value)
        let config = value.config
        #expect(config.services.count == 1)
        let service = try #require(config.services.first)
        #expect(service.backends.count == 2)
        #expect(service.backends.allSatisfy { $0.address.hasPrefix("127.0.0.1:") && $0.checkAddress.isEmpty })
        let settings = ServiceSettings(service: service, global: config)
        #expect(settings.network == .tcp)
        #expect(settings.balance == .roundRobin)
        #expect(settings.checkInterval == 5000 && settings.fall == 2 && settings.rise == 2)
        #expect(settings.clientTimeout == 0 && settings.serverTimeout == 0 && settings.connectTimeout == 0)
        #expect(value.services[0].present == [.backends])
    }

    @Test func theVirtualHostFixtureHasTwoServicesSharingHosts() throws {
        let value = try #require(ConfigCoding.decodeConfig(try Fixture.data("original-vhosts.json")).value)
        let hosts = value.config.services.map { Set($0.virtualHosts.map(VirtualHostName.normalize)) }
        #expect(hosts.count == 2)
        #expect(hosts[0].intersection(hosts[1]) == ["app.example.com", "*.example.net"])
    }

    @Test func unknownKeysAreWarningsWithTheirPath() throws {
        let decoded = decode(
            """
            {"colour": "red", "services": [
              {"name": "a", "address": ":1", "tls": true},
              {"name": "b", "address": ":2", "backends": [
                {"name": "x", "address": "1.2.3.4:5"},
                {"name": "y", "address": "1.2.3.4:6", "max_conns": 3}]}]}
            """)
        #expect(decoded.problems == [])
        #expect(decoded.warnings.map(\.path) == ["colour", "services[0].tls", "services[1].backends[1].max_conns"])
        let value = try #require(decoded.value)
        #expect(value.config.services.map(\.name) == ["a", "b"])
        #expect(value.config.services[1].backends[1] == BackendConfig(name: "y", address: "1.2.3.4:6"))
    }

    @Test func aTypeErrorIsAProblemAtItsPath() {
        let decoded = decode(
            """
            {"services": [{"name": "a", "address": ":1", "backends": [
                {"name": "x", "address": "1.2.3.4:5"},
                {"name": "y", "address": "1.2.3.4:6", "weight": "3"}]}]}
            """)
        #expect(decoded.problems.map(\.path) == ["services[0].backends[1].weight"])
    }

    @Test func everyTypeErrorOfADocumentIsReported() {
        let decoded = decode(
            """
            {"check_interval": true, "https-redirect": "yes", "services": [
              {"name": 7, "address": ":1", "fall": "2", "virtual_hosts": ["a.com", 5],
               "error_pages": {"http://e.com/x.html": ["404"]},
               "backends": [{"name": "x", "address": 80}, "y", {"name": "z", "check_address": false}]},
              {"name": "b", "address": ":2", "maintenance_mode": 1, "backends": {}},
              null]}
            """)
        #expect(
            Set(decoded.problems.map(\.path)) == [
                "check_interval", "https-redirect", "services[0].name", "services[0].fall",
                "services[0].virtual_hosts[1]", "services[0].error_pages.http://e.com/x.html[0]",
                "services[0].backends[0].address", "services[0].backends[1]", "services[0].backends[2].check_address",
                "services[1].maintenance_mode", "services[1].backends", "services[2]",
            ])
        #expect(decoded.problems.count == 12)
    }

    @Test func aNumberThatIsNotAnIntegerIsAProblemAtItsPath() {
        // Reported at the field like any type error, not as malformed JSON,
        // and without hiding the document's other problems.
        for number in ["1.5", "99999999999999999999"] {
            let decoded = decode(
                #"{"fall": "x", "services": [{"name": "a", "address": ":1", "backends": [{"name": "b", "address": "1.2.3.4:5", "weight": \#(number)}]}]}"#
            )
            #expect(
                Set(decoded.problems.map(\.path)) == ["fall", "services[0].backends[0].weight"],
                "weight \(number): \(decoded.problems)")
            #expect(!decoded.problems.contains { $0.reason.contains("malformed") }, "weight \(number)")
        }
    }

    @Test func malformedJSONIsOneProblemAtTheDocument() {
        for text in ["", "{", "{\"services\": [}", "nope", "{'fall': 1}", "{\"fall\": +1}"] {
            let decoded = decode(text)
            #expect(decoded.value == nil, "\(text)")
            #expect(decoded.problems.count == 1, "\(text)")
            #expect(decoded.problems.first?.path == "", "\(text)")
        }
    }

    @Test func aDocumentThatIsNotAnObjectIsAProblem() {
        for text in ["null", "[]", "3", "\"config\""] {
            #expect(decode(text).problems.map(\.path) == [""], "\(text)")
        }
    }

    @Test func encodeSortsServicesAndBackendsByName() throws {
        let config = Config(services: [
            ServiceConfig(
                name: "zeta", address: ":3",
                backends: [BackendConfig(name: "b2", address: "1.1.1.1:1"), BackendConfig(name: "b10", address: "1.1.1.1:2"), BackendConfig(name: "a", address: "1.1.1.1:3")]),
            ServiceConfig(name: "alpha", address: ":1"),
            ServiceConfig(name: "mid", address: ":2"),
        ])
        let object = try jsonObject(ConfigCoding.encode(config))
        let services = try #require(object["services"] as? [[String: Any]])
        #expect(services.map { $0["name"] as? String } == ["alpha", "mid", "zeta"])
        let backends = try #require(services[2]["backends"] as? [[String: Any]])
        #expect(backends.map { $0["name"] as? String } == ["a", "b10", "b2"])
    }

    @Test func encodeUsesTheOriginalsKeys() throws {
        let config = Config(
            balance: "RR", checkInterval: 1, httpsRedirect: true,
            services: [
                ServiceConfig(
                    name: "s", address: ":1", network: "udp", balance: "LC", virtualHosts: ["a.com"],
                    errorPages: ["http://e.com/": [503]],
                    backends: [BackendConfig(name: "b", address: "1.1.1.1:1", network: "udp", checkAddress: "1.1.1.1:2", weight: 2)],
                    maintenanceMode: true)
            ])
        let object = try jsonObject(ConfigCoding.encode(config))
        #expect(
            Set(object.keys) == [
                "balance", "check_interval", "fall", "rise", "client_timeout", "server_timeout", "connect_timeout",
                "https-redirect", "services",
            ])
        let service = try #require((object["services"] as? [[String: Any]])?.first)
        #expect(
            Set(service.keys) == [
                "name", "address", "network", "balance", "check_interval", "fall", "rise", "client_timeout",
                "server_timeout", "connect_timeout", "https-redirect", "virtual_hosts", "error_pages", "backends",
                "maintenance_mode",
            ])
        let backend = try #require((service["backends"] as? [[String: Any]])?.first)
        #expect(Set(backend.keys) == ["name", "address", "network", "check_address", "weight"])
    }

    @Test func encodeLeavesOutEmptyOptionalFieldsAsTheOriginalDoes() throws {
        let config = Config(services: [ServiceConfig(name: "s", address: ":1", backends: [BackendConfig(name: "b", address: "1.1.1.1:1")])])
        let object = try jsonObject(ConfigCoding.encode(config))
        #expect(object["balance"] == nil)
        let service = try #require((object["services"] as? [[String: Any]])?.first)
        for key in ["network", "balance", "virtual_hosts", "error_pages"] { #expect(service[key] == nil, "\(key)") }
        let backend = try #require((service["backends"] as? [[String: Any]])?.first)
        #expect(backend["network"] == nil)
        #expect(backend["weight"] as? Int == 0)
    }

    @Test func decodingRecordsWhichListsAndFlagsAServiceCarries() throws {
        let bare = try #require(ConfigCoding.decodeService(Data(#"{"name": "a", "fall": 3}"#.utf8)).value)
        #expect(bare.present == [])
        let full = try #require(
            ConfigCoding.decodeService(
                Data(
                    #"{"https-redirect": false, "maintenance_mode": false, "virtual_hosts": [], "error_pages": {}, "backends": []}"#
                        .utf8)
            ).value)
        #expect(full.present == .all)
        let nulls = try #require(
            ConfigCoding.decodeService(Data(#"{"maintenance_mode": null, "backends": null}"#.utf8)).value)
        #expect(nulls.present == [])
        let global = try #require(decode(#"{"fall": 1}"#).value)
        #expect(!global.httpsRedirectPresent)
    }

    @Test func aBackendBodyDecodesWithItsWarningsAndProblems() throws {
        let decoded = ConfigCoding.decodeBackend(Data(#"{"name": "b", "address": "1.1.1.1:1", "weight": "x", "extra": 1}"#.utf8))
        #expect(decoded.problems.map(\.path) == ["weight"])
        #expect(decoded.warnings.map(\.path) == ["extra"])
    }
}
