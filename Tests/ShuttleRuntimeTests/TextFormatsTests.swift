import Foundation
@testable import ShuttleRuntime
import Testing

@Suite("Hand-written text formats: JSON log lines, path names, percent-decoding")
struct TextFormatsTests {
    @Test("a JSON log line is one object Foundation reads back, keys sorted")
    func jsonLineRoundTrips() throws {
        let awkward = "quote\" backslash\\ slash/ newline\n tab\t nul\u{0} bell\u{7} é 😀"
        let line = JSONLine.object([("z", .string(awkward)), ("a", .number("12")), ("m", .number("0.000123"))])
        #expect(!line.contains("\n"))
        #expect(line.hasPrefix("{\"a\":12,\"m\":0.000123,\"z\":"))
        #expect(line.contains("slash/"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["z"] as? String == awkward)
        #expect(object["a"] as? Int == 12)
        #expect(object["m"] as? Double == 0.000123)
    }

    @Test func accessLogJSONHasTheLogfmtKeys() throws {
        let entry = AccessLog.Entry(
            id: "r1", method: "GET", clientIP: "127.0.0.1", url: "/a?b=\"c\"", backend: "b1", status: 502,
            duration: 0.0000015, agent: "curl/8", error: "connect refused")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(AccessLog.json(entry).utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["time", "id", "method", "client-ip", "url", "backend", "status", "duration", "agent", "err"])
        #expect(object["url"] as? String == "/a?b=\"c\"")
        #expect(object["status"] as? Int == 502)
        #expect(object["duration"] as? Double == 0.000002)
    }

    @Test("an access log line is the original's logfmt, quoted where a value needs it")
    func accessLogLine() {
        let entry = AccessLog.Entry(
            id: "a1b2", method: "GET", clientIP: "127.0.0.1", url: "/a?b=c", backend: "127.0.0.1:8080", status: 200,
            duration: 0.0123456, agent: "curl/8.5", error: "")
        #expect(
            AccessLog.line(entry)
                == "id=a1b2 method=GET client-ip=127.0.0.1 url=\"/a?b=c\" backend=127.0.0.1:8080 status=200 duration=0.012346 agent=curl/8.5 err=\n")
        var odd = entry
        odd.url = "/caf\u{E9}"
        odd.agent = "x \"y\" \\z"
        odd.error = "one\r\ntwo\nthree"
        odd.status = 7
        #expect(
            AccessLog.line(odd)
                == "id=a1b2 method=GET client-ip=127.0.0.1 url=/caf\u{E9} backend=127.0.0.1:8080 status=7 duration=0.012346 agent=\"x \\\"y\\\" \\\\z\" err=\"one\\r\\ntwo\\nthree\"\n")
        // However the error reads, the line is one line.
        #expect(AccessLog.line(odd).split(separator: "\n", omittingEmptySubsequences: false).count == 2)
    }

    @Test("path names split as NSString's did")
    func pathNames() {
        for (path, directory, last) in [
            ("/var/lib/shuttle/state.json", "/var/lib/shuttle", "state.json"), ("state.json", "", "state.json"),
            ("/state.json", "/", "state.json"), ("dir/sub/", "dir", "sub"), ("./x", ".", "x"),
        ] {
            #expect(FileWrites.directory(of: path) == directory, "\(path)")
            #expect(FileWrites.lastComponent(of: path) == last, "\(path)")
            #expect(FileWrites.directory(of: path) == (path as NSString).deletingLastPathComponent, "\(path)")
            #expect(FileWrites.lastComponent(of: path) == (path as NSString).lastPathComponent, "\(path)")
        }
        #expect(FileWrites.join("/etc/certs", "a.pem") == "/etc/certs/a.pem")
        #expect(FileWrites.join("/etc/certs/", "a.pem") == "/etc/certs/a.pem")
        #expect(FileWrites.join("", "a.pem") == "a.pem")
    }

    @Test("percent-decoding agrees with Foundation's")
    func percentDecoding() {
        for raw in ["plain", "a%2Fb", "%41%42c", "%e2%82%ac", "caf%C3%A9", "%", "%4", "%zz", "a%2", "%FF", "%C3", "100%25", ""] {
            #expect(AdminEndpoint.percentDecoded(raw[...]) == raw.removingPercentEncoding, "\(raw)")
        }
    }
}
