import NIOHTTP1
import Testing

@testable import ShuttleRuntime

@Suite("HTTP virtual hosts: which requests may be sent to a backend twice")
struct IdempotentMethodTests {
    @Test(
        "a method as received and as an HTTPMethod are read alike (RFC 9110 9.2.2)",
        arguments: ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH", "CONNECT", "get", "Get", "PURGE", ""]
    )
    func receivedAndParsedAgree(method: String) {
        let parsed = HeaderRules.isIdempotent(HTTPMethod(rawValue: method))
        #expect(HeaderRules.isIdempotent(method: method) == parsed)
        #expect(parsed == ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(method))
    }
}
