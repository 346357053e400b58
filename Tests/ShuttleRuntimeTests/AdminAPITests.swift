import Foundation
import Logging
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleTestSupport
import Testing

@testable import ShuttleRuntime

/// A driver with the admin API on `127.0.0.1:0`, over real sockets.
final class AdminHarness {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let driver: Driver
    let server: any Channel
    let port: Int

    init() throws {
        var logger = Logger(label: "admin-api-test")
        logger.logLevel = .critical
        driver = Driver(group: group, control: group.next(), logger: logger, stateFile: nil)
        do {
            server = try AdminServer.bind("127.0.0.1:0", driver: driver).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        port = server.localAddress?.port ?? 0
    }

    func connect() throws -> RawHTTPClient { try RawHTTPClient(port: port) }

    /// One request on a connection of its own.
    func request(
        _ method: String, _ target: String, body: String? = nil, headers: [(String, String)] = []
    ) throws -> RawHTTPResponse {
        try connect().request(method, target, body: body, headers: headers)
    }

    /// The running config as `GET /_config` gives it.
    func configText() throws -> String {
        let response = try request("GET", "/_config")
        #expect(response.status == 200)
        return response.text
    }

    /// The server still answers normally, on a new connection.
    func expectHealthy(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let response = try request("GET", "/_config")
        #expect(response.status == 200, sourceLocation: sourceLocation)
        #expect(try response.object()["services"] is [Any], sourceLocation: sourceLocation)
    }

    func shutdown() {
        try? server.close().wait()
        try? driver.closeListeners().wait()
        driver.stopHealthChecks()
        try? group.syncShutdownGracefully()
    }
}

private let serviceStatsKeys: Set<String> = [
    "name", "address", "virtual_hosts", "backends", "balance", "check_interval", "fall", "rise", "client_timeout",
    "server_timeout", "connect_timeout", "sent", "received", "errors", "connections", "active", "http_active",
    "http_connections", "http_errors",
]
private let backendStatsKeys: Set<String> = [
    "name", "address", "check_address", "up", "weight", "sent", "received", "errors", "connections", "active",
    "http_active", "check_success", "check_fail",
]

/// Names of the services of a config body.
private func serviceNames(_ config: [String: Any]) -> [String] {
    (config["services"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
}

private func services(_ config: [String: Any]) -> [[String: Any]] {
    config["services"] as? [[String: Any]] ?? []
}

private let webService = #"{"address": "127.0.0.1:0", "backends": [{"name": "b1", "address": "127.0.0.1:9"}]}"#

@Suite("Admin API")
struct AdminAPITests {
    @Test func statsOfNoServicesAre503WithAnEmptyJSONList() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }

        for path in ["/", "/_stats"] {
            let response = try admin.request("GET", path)
            #expect(response.status == 503)
            #expect(response.header("Content-Type") == "application/json")
            #expect((try response.json() as? [Any])?.isEmpty == true)
        }
        let config = try admin.request("GET", "/_config")
        #expect(config.status == 200)
        #expect(config.header("Content-Type") == "application/json")
        let object = try config.object()
        #expect(serviceNames(object).isEmpty)
        #expect(object["check_interval"] is Int)
    }

    @Test func aCreatedServiceHasStatsAndConfig() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }

        let created = try admin.request("PUT", "/web", body: webService)
        #expect(created.status == 200)
        // A mutating call answers with the whole running config.
        let config = try created.object()
        #expect(serviceNames(config) == ["web"])
        #expect(config["services"] != nil && config["check_interval"] != nil)
        // Port 0 was bound to a real port.
        let bound = admin.driver.read { $0.listener(ofService: "web")?.boundAddress }
        #expect(bound != nil && bound != "127.0.0.1:0")

        for path in ["/web", "/web/_stats"] {
            let response = try admin.request("GET", path)
            #expect(response.status == 200)
            let stats = try response.object()
            #expect(serviceStatsKeys.isSubset(of: stats.keys))
            #expect(stats["name"] as? String == "web")
            #expect(stats["address"] as? String == "127.0.0.1:0")
            let backends = stats["backends"] as? [[String: Any]] ?? []
            #expect(backends.count == 1)
            #expect(backendStatsKeys.isSubset(of: backends.first.map { Array($0.keys) } ?? []))
        }

        let serviceConfig = try admin.request("GET", "/web/_config")
        #expect(serviceConfig.status == 200)
        let service = try serviceConfig.object()
        #expect(service["name"] as? String == "web")
        #expect(service["address"] as? String == "127.0.0.1:0")
        #expect((service["backends"] as? [[String: Any]])?.first?["name"] as? String == "b1")

        for path in ["/", "/_stats"] {
            let response = try admin.request("GET", path)
            #expect(response.status == 200)
            let list = try response.json() as? [[String: Any]] ?? []
            #expect(list.map { $0["name"] as? String } == ["web"])
        }

        // GET /_config is a valid config file.
        let running = try admin.request("GET", "/_config")
        #expect(running.status == 200)
        let decoded = ConfigCoding.decodeConfig(Data(running.body))
        #expect(decoded.problems.isEmpty && decoded.warnings.isEmpty)
        #expect(decoded.value?.services.map(\.service.name) == ["web"])
        #expect(Validation.validate(decoded.value!.config).isEmpty)
    }

    @Test func backendsAreCreatedReplacedAndDeleted() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        #expect(try admin.request("PUT", "/web", body: #"{"address": "127.0.0.1:0"}"#).status == 200)

        let created = try admin.request("PUT", "/web/b1", body: #"{"address": "127.0.0.1:9", "weight": 3}"#)
        #expect(created.status == 200)
        let backends = services(try created.object()).first?["backends"] as? [[String: Any]] ?? []
        #expect(backends.map { $0["name"] as? String } == ["b1"])
        #expect(backends.first?["weight"] as? Int == 3)

        let stats = try admin.request("GET", "/web/b1")
        #expect(stats.status == 200)
        let backend = try stats.object()
        #expect(backendStatsKeys.isSubset(of: backend.keys))
        #expect(backend["weight"] as? Int == 3)
        #expect(backend["up"] as? Bool == true)

        #expect(try admin.request("POST", "/web/b1", body: #"{"address": "127.0.0.1:10"}"#).status == 200)
        #expect(try admin.request("GET", "/web/b1").object()["address"] as? String == "127.0.0.1:10")
        let second = try admin.request("PUT", "/web/b2", body: #"{"name": "b2", "address": "127.0.0.1:11"}"#)
        #expect(second.status == 200)

        let deleted = try admin.request("DELETE", "/web/b1")
        #expect(deleted.status == 200)
        let left = services(try deleted.object()).first?["backends"] as? [[String: Any]] ?? []
        #expect(left.map { $0["name"] as? String } == ["b2"])

        for (method, path) in [("GET", "/web/b1"), ("DELETE", "/web/b1")] {
            let response = try admin.request(method, path)
            #expect(response.status == 404, "\(method) \(path)")
            #expect((try response.object()["error"] as? String)?.contains("\"b1\"") == true)
        }
        for (method, path, body) in [
            ("GET", "/nope/b1", nil), ("DELETE", "/nope/b1", nil), ("PUT", "/nope/b1", #"{"address": "127.0.0.1:9"}"#),
        ] {
            let response = try admin.request(method, path, body: body)
            #expect(response.status == 404, "\(method) \(path)")
            #expect(try response.object()["error"] as? String == #"service "nope" not found"#)
        }
    }

    @Test func servicesAreDeleted() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        #expect(try admin.request("PUT", "/web", body: webService).status == 200)

        let deleted = try admin.request("DELETE", "/web")
        #expect(deleted.status == 200)
        #expect(serviceNames(try deleted.object()).isEmpty)
        #expect(admin.driver.read { $0.listener(ofService: "web") } == nil)
        for (method, path) in [("GET", "/web"), ("GET", "/web/_stats"), ("GET", "/web/_config"), ("DELETE", "/web")] {
            let response = try admin.request(method, path)
            #expect(response.status == 404, "\(method) \(path)")
            #expect(try response.object()["error"] as? String == #"service "web" not found"#)
        }
        #expect(try admin.request("GET", "/").status == 503)
    }

    @Test func configUpdatesMergeThroughBothPaths() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }

        let first = try admin.request("POST", "/_config", body: #"{"services": [{"name": "a", "address": "127.0.0.1:0"}]}"#)
        #expect(first.status == 200)
        #expect(serviceNames(try first.object()) == ["a"])
        let second = try admin.request("PUT", "/", body: #"{"services": [{"name": "b", "address": "127.0.0.1:0"}]}"#)
        #expect(second.status == 200)
        #expect(serviceNames(try second.object()) == ["a", "b"])
        let globals = try admin.request("PUT", "/_config", body: #"{"check_interval": 2000}"#)
        #expect(globals.status == 200)
        #expect(try globals.object()["check_interval"] as? Int == 2000)
        #expect(serviceNames(try globals.object()) == ["a", "b"])
    }

    @Test func unknownPathsAre404WithAMessage() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        #expect(try admin.request("PUT", "/web", body: webService).status == 200)

        for path in [
            "/web/b1/x", "/a/b/c/d", "/_x", "/_stats/x", "/_config/x", "/_x/b1", "/web/_x", "//", "/web/", "/web//b1",
            "*",
        ] {
            for method in ["GET", "PUT", "DELETE"] {
                let response = try admin.request(method, path, body: method == "PUT" ? webService : nil)
                #expect(response.status == 404, "\(method) \(path)")
                #expect(try response.object()["error"] is String, "\(method) \(path)")
            }
        }
        for path in ["/nope", "/nope/_stats", "/nope/_config"] {
            let response = try admin.request("GET", path)
            #expect(response.status == 404, "\(path)")
            #expect(try response.object()["error"] as? String == #"service "nope" not found"#)
        }
        let badEncoding = try admin.request("GET", "/we%zzb")
        #expect(badEncoding.status == 400)
        #expect(try badEncoding.object()["error"] is String)
        try admin.expectHealthy()
    }

    @Test func pathSegmentsArePercentDecodedAndQueriesIgnored() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        #expect(try admin.request("PUT", "/w%65b", body: #"{"address": "127.0.0.1:0"}"#).status == 200)

        #expect(try admin.request("GET", "/web?pretty=1&x=%zz").object()["name"] as? String == "web")
        #expect(try admin.request("PUT", "/web/b%31", body: #"{"address": "127.0.0.1:9"}"#).status == 200)
        #expect(try admin.request("GET", "/%77eb/b1").object()["name"] as? String == "b1")
        #expect(try admin.request("GET", "/_config?x=1").status == 200)
        // A `/` that was encoded stays inside its segment: a name the model refuses.
        let slash = try admin.request("PUT", "/a%2Fb", body: #"{"address": "127.0.0.1:0"}"#)
        #expect(slash.status == 400)
        #expect(try slash.problems().first?.hasPrefix("name:") == true)
    }

    @Test func otherMethodsAre405WithAllow() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        #expect(try admin.request("PUT", "/web", body: webService).status == 200)

        let cases: [(String, String, String)] = [
            ("DELETE", "/", "GET, HEAD, PUT, POST"),
            ("DELETE", "/_config", "GET, HEAD, PUT, POST"),
            ("PUT", "/_stats", "GET, HEAD"),
            ("POST", "/web/_stats", "GET, HEAD"),
            ("DELETE", "/web/_config", "GET, HEAD"),
            ("PATCH", "/web", "GET, HEAD, PUT, POST, DELETE"),
            ("OPTIONS", "/web/b1", "GET, HEAD, PUT, POST, DELETE"),
        ]
        let connection = try admin.connect()
        for (method, path, allow) in cases {
            let response = try connection.request(method, path, body: method == "DELETE" ? nil : "{}")
            #expect(response.status == 405, "\(method) \(path)")
            #expect(response.header("Allow") == allow, "\(method) \(path)")
            #expect(try response.object()["error"] is String)
        }
        // Still served on the same connection, and nothing changed.
        #expect(try connection.request("GET", "/web/b1").status == 200)

        let head = try admin.connect()
        try head.send(RawHTTPClient.requestText("HEAD", "/_config"))
        let answer = try head.readResponse(toHEAD: true)
        #expect(answer.status == 200)
        #expect(answer.body.isEmpty)
        #expect(Int(answer.header("Content-Length") ?? "") ?? 0 > 0)
        #expect(try head.request("GET", "/web").status == 200)
    }

    @Test func bodiesOver8MiBAre413() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let limit = 8 * 1024 * 1024

        // Declared too large: answered before any of the body is sent.
        let declared = try admin.connect()
        try declared.send("PUT /_config HTTP/1.1\r\nHost: x\r\nContent-Length: \(limit + 1)\r\n\r\n")
        let early = try declared.readResponse()
        #expect(early.status == 413)
        #expect(early.header("Connection") == "close")
        #expect(try early.object()["error"] is String)
        #expect(declared.isClosedByServer())

        // Streamed without a length: refused once the size passes the limit.
        let streamed = try admin.connect()
        try streamed.send("PUT /_config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        let mebibyte = [UInt8](repeating: UInt8(ascii: " "), count: 1024 * 1024)
        for _ in 0..<9 {
            // The server may stop reading once it has answered.
            try? streamed.send(Array("100000\r\n".utf8) + mebibyte + Array("\r\n".utf8))
        }
        try? streamed.send("0\r\n\r\n")
        let late = try streamed.readResponse()
        #expect(late.status == 413)
        #expect(try late.object()["error"] is String)

        // Up to the limit is fine (and curl's Expect: 100-continue is honoured).
        let json = #"{"check_interval": 1000}"#
        let padded = json + String(repeating: " ", count: limit - json.utf8.count)
        let accepted = try admin.request("PUT", "/_config", body: padded, headers: [("Expect", "100-continue")])
        #expect(accepted.status == 200)
        #expect(try accepted.object()["check_interval"] as? Int == 1000)
        try admin.expectHealthy()
    }

    @Test func malformedJSONIs400NamingTheProblem() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let connection = try admin.connect()

        for (path, body) in [("/_config", "{not json"), ("/web", "{\"address\": "), ("/web", ""), ("/web/b1", "[1,")] {
            let response = try connection.request("PUT", path, body: body)
            #expect(response.status == 400, "\(path) \(body)")
            let object = try response.object()
            #expect((object["error"] as? String)?.hasPrefix("malformed JSON") == true)
            let problems = object["problems"] as? [[String: Any]] ?? []
            #expect(problems.count == 1)
            #expect(problems.first?["path"] as? String == "")
            #expect((problems.first?["reason"] as? String)?.hasPrefix("malformed JSON") == true)
            // The same connection still serves.
            #expect(try connection.request("GET", "/_config").status == 200)
        }
        #expect(try serviceNames(admin.request("GET", "/_config").object()).isEmpty)
    }

    @Test func valuesOfTheWrongTypeAreAllListed() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let before = try admin.configText()

        let body = #"""
            {"address": 5, "fall": "two", "virtual_hosts": "x", "backends": [{"name": 1, "address": "127.0.0.1:9"}]}
            """#
        let response = try admin.request("PUT", "/web", body: body)
        #expect(response.status == 400)
        let problems = try response.problems()
        #expect(problems.count == 4)
        #expect(Set(problems.map { String($0.prefix { $0 != ":" }) }) == ["address", "fall", "virtual_hosts", "backends[0].name"])
        #expect(problems.contains("address: expected a string"))
        #expect((try response.object()["error"] as? String)?.contains("(and 3 more problems)") == true)

        let global = try admin.request("POST", "/_config", body: #"{"rise": true, "services": [{"name": "a", "weight": 1, "rise": []}]}"#)
        #expect(global.status == 400)
        let globalProblems = try global.problems()
        #expect(globalProblems.contains { $0.hasPrefix("rise:") })
        #expect(globalProblems.contains { $0.hasPrefix("services[0].rise:") })
        #expect(try admin.configText() == before)

        // Thousands of bad elements: all counted, the first hundred listed.
        let many = "{\"address\": \"127.0.0.1:0\", \"backends\": [" + Array(repeating: "1", count: 5000).joined(separator: ",") + "]}"
        let manyProblems = try admin.request("PUT", "/web", body: many)
        #expect(manyProblems.status == 400)
        let listed = try manyProblems.problems()
        #expect(listed.count == 101)
        #expect(listed.first == "backends[0]: expected an object")
        #expect(listed.last == ": 4900 more problems not listed")
        #expect((try manyProblems.object()["error"] as? String)?.hasSuffix("(and 4999 more problems)") == true)
        try admin.expectHealthy()
    }

    @Test func validationErrorsNameTheirJSONPaths() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let before = try admin.configText()

        let body = #"""
            {"services": [
              {"name": "a", "address": "nope"},
              {"name": "b", "address": "127.0.0.1:0", "balance": "XX", "backends": [{"name": "x"}]}
            ]}
            """#
        let response = try admin.request("POST", "/_config", body: body)
        #expect(response.status == 400)
        let paths = Set(try response.problems().map { String($0.prefix { $0 != ":" }) })
        #expect(paths.isSuperset(of: ["services[0].address", "services[1].balance", "services[1].backends[0].address"]))

        let negative = try admin.request("PUT", "/web", body: #"{"address": "127.0.0.1:0", "check_interval": -1}"#)
        #expect(negative.status == 400)
        #expect(try negative.problems().contains { $0.hasPrefix("check_interval:") })

        #expect(try admin.request("PUT", "/web", body: webService).status == 200)
        let udpBackend = try admin.request("PUT", "/web/u", body: #"{"address": "127.0.0.1:9", "network": "udp"}"#)
        #expect(udpBackend.status == 400)
        #expect(try udpBackend.problems().contains { $0.hasPrefix("network:") })
        let badBackend = try admin.request("PUT", "/web/b2", body: #"{"address": "no port"}"#)
        #expect(badBackend.status == 400)
        #expect(try badBackend.problems().contains { $0.hasPrefix("address:") })

        // Only the valid service was added.
        let after = try admin.request("GET", "/_config").object()
        #expect(serviceNames(after) == ["web"])
        #expect(serviceNames(try JSONSerialization.jsonObject(with: Data(before.utf8)) as? [String: Any] ?? [:]).isEmpty)
    }

    @Test func aPortInUseIs409AndChangesNothing() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let holder = try ServerBootstrap(group: admin.group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? holder.close().wait() }
        let taken = "127.0.0.1:\(holder.localAddress!.port!)"
        #expect(try admin.request("PUT", "/web", body: webService).status == 200)
        let before = try admin.configText()

        let service = try admin.request("PUT", "/other", body: #"{"address": "\#(taken)"}"#)
        #expect(service.status == 409)
        let error = try service.object()["error"] as? String ?? ""
        #expect(error.contains(taken))
        #expect(error.contains("\"other\""))
        #expect(try service.problems().first?.hasPrefix("address: cannot listen on \(taken)") == true)
        #expect(try admin.request("GET", "/other").status == 404)
        #expect(try admin.configText() == before)

        // All or nothing: the service that could bind is not created either.
        let update = #"{"services": [{"name": "fine", "address": "127.0.0.1:0"}, {"name": "other", "address": "\#(taken)"}]}"#
        let whole = try admin.request("POST", "/_config", body: update)
        #expect(whole.status == 409)
        #expect(try whole.problems().first?.hasPrefix("services[1].address:") == true)
        #expect(try admin.request("GET", "/fine").status == 404)
        #expect(try admin.configText() == before)

        // Moving a running service onto the port leaves it where it was.
        let move = try admin.request("POST", "/web", body: #"{"address": "\#(taken)"}"#)
        #expect(move.status == 409)
        #expect(try admin.configText() == before)
        #expect(try admin.request("GET", "/web").object()["address"] as? String == "127.0.0.1:0")
        try admin.expectHealthy()
    }

    @Test func aNameInTheBodyMustMatchThePath() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }

        let service = try admin.request("PUT", "/web", body: #"{"name": "other", "address": "127.0.0.1:0"}"#)
        #expect(service.status == 400)
        #expect(try service.problems().contains { $0.hasPrefix("name:") })
        #expect(try admin.request("GET", "/web").status == 404)
        #expect(try admin.request("GET", "/other").status == 404)

        #expect(try admin.request("PUT", "/web", body: #"{"name": "web", "address": "127.0.0.1:0"}"#).status == 200)
        let before = try admin.configText()
        let backend = try admin.request("PUT", "/web/b1", body: #"{"name": "b2", "address": "127.0.0.1:9"}"#)
        #expect(backend.status == 400)
        #expect(try backend.problems().contains { $0.hasPrefix("name:") })
        #expect(try admin.configText() == before)
    }

    @Test func anEmptyOrNullBodyDoesNotCreateAService() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }

        let empty = try admin.request("PUT", "/web", body: "{}")
        #expect(empty.status == 400)
        #expect(try empty.problems() == ["address: is required"])
        for body in ["null", "[]", "7"] {
            let response = try admin.request("POST", "/web", body: body)
            #expect(response.status == 400, "\(body)")
            #expect(try response.problems() == [": expected an object"], "\(body)")
        }
        #expect(try admin.request("GET", "/web").status == 404)
        #expect(try admin.request("GET", "/").status == 503)
        try admin.expectHealthy()
    }

    @Test func unknownKeysComeBackAsWarningHeaders() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }

        let body = #"""
            {"address": "127.0.0.1:0", "adress": "x", "a\"b\nc": 1,
             "backends": [{"name": "b1", "address": "127.0.0.1:9", "wieght": 2}]}
            """#
        let response = try admin.request("PUT", "/web", body: body)
        #expect(response.status == 200)
        #expect(
            Set(response.values("Warning")) == [
                #"199 shuttle "adress: unknown key, ignored""#,
                #"199 shuttle "a\"b?c: unknown key, ignored""#,
                #"199 shuttle "backends[0].wieght: unknown key, ignored""#,
            ])
        #expect(try admin.request("GET", "/web").status == 200)
        #expect(try admin.request("GET", "/web").values("Warning").isEmpty)
    }

    @Test func hostileInputClosesOnlyItsOwnConnection() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let bystander = try admin.connect()
        #expect(try bystander.request("GET", "/_config").status == 200)

        let garbage = try admin.connect()
        try garbage.send([0, 1, 2, 0xFF, 0xFE] + Array("GARBAGE \u{7}\r\n\r\n".utf8))
        #expect(try garbage.readResponse().status == 400)
        #expect(garbage.isClosedByServer())

        let hugeHeader = try admin.connect()
        try? hugeHeader.send("GET /_config HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 200_000))\r\n\r\n")
        #expect(try hugeHeader.readResponse().status == 400)
        #expect(hugeHeader.isClosedByServer())

        let badLength = try admin.connect()
        try badLength.send("PUT /_config HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}")
        #expect(try badLength.readResponse().status == 400)
        #expect(badLength.isClosedByServer())

        // Nesting deep enough to exhaust a recursive parser's stack.
        let deep = String(repeating: "[", count: 1_000_000)
        let nested = try admin.request("PUT", "/_config", body: deep)
        #expect(nested.status == 400)
        #expect((try nested.object()["error"] as? String)?.hasPrefix("malformed JSON") == true)
        let deepObject = String(repeating: "{\"services\": [", count: 100_000)
        #expect(try admin.request("POST", "/", body: deepObject).status == 400)

        let halfRequest = try admin.connect()
        try halfRequest.send("PUT /_config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        halfRequest.close()

        #expect(try bystander.request("GET", "/_config").status == 200)
        try admin.expectHealthy()
    }

    @Test func keepAliveConnectionsAnswerPipelinedRequestsInOrder() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let connection = try admin.connect()

        try connection.send(
            RawHTTPClient.requestText("GET", "/")
                + RawHTTPClient.requestText("PUT", "/web", body: webService)
                + RawHTTPClient.requestText("GET", "/web")
                + RawHTTPClient.requestText("DELETE", "/web/b1")
                + RawHTTPClient.requestText("GET", "/web/b1"))
        #expect(try connection.readResponse().status == 503)
        #expect(try connection.readResponse().status == 200)
        let stats = try connection.readResponse()
        #expect(stats.status == 200)
        #expect(try stats.object()["name"] as? String == "web")
        #expect(try connection.readResponse().status == 200)
        #expect(try connection.readResponse().status == 404)
        for _ in 0..<20 {
            #expect(try connection.request("GET", "/web").status == 200)
        }
    }

    @Test func connectionsCloseWhenTheClientAsks() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }

        let http10 = try admin.connect()
        try http10.send("GET /_config HTTP/1.0\r\n\r\n")
        let old = try http10.readResponse()
        #expect(old.status == 200)
        #expect(http10.isClosedByServer())

        let keepAlive10 = try admin.connect()
        try keepAlive10.send("GET /_config HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try keepAlive10.readResponse().header("Connection")?.lowercased() == "keep-alive")
        #expect(try keepAlive10.request("GET", "/_config").status == 200)

        let close = try admin.connect()
        let closing = try close.request("GET", "/_config", headers: [("Connection", "close")])
        #expect(closing.status == 200)
        #expect(closing.header("Connection") == "close")
        #expect(close.isClosedByServer())
    }

    @Test func aUnixSocketServesTheSameAPI() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("shuttle-admin-\(UUID().uuidString).sock").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // A stale socket file from an earlier run is replaced.
        try RawHTTPClient.leaveStaleSocket(at: path)
        #expect(FileManager.default.fileExists(atPath: path))

        let server = try AdminServer.bind(path, driver: admin.driver).wait()
        defer { try? server.close().wait() }
        let client = try RawHTTPClient(unixPath: path)
        #expect(try client.request("GET", "/").status == 503)
        #expect(try client.request("PUT", "/web", body: webService).status == 200)
        #expect(try client.request("GET", "/web").object()["name"] as? String == "web")
    }

    @Test func aFileThatIsNotASocketIsNotReplaced() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("shuttle-admin-\(UUID().uuidString).sock").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }

        #expect(throws: (any Error).self) { try AdminServer.bind(path, driver: admin.driver).wait() }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    }

    @Test func aBadAdminAddressDoesNotBind() throws {
        let admin = try AdminHarness()
        defer { admin.shutdown() }
        #expect(throws: AdminServerError.self) { try AdminServer.bind("nonsense", driver: admin.driver).wait() }
        #expect(throws: AdminServerError.self) { try AdminServer.bind("127.0.0.1:99999", driver: admin.driver).wait() }
    }
}
