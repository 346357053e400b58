#if os(Linux)
import Glibc
import PropertyBased
import Testing

@testable import ShuttleRuntime

@Suite("Relay addresses: a client's IP as text")
struct SpliceAddressTests {
    @Test("an IPv4 address is written as inet_ntop writes it")
    func dottedQuads() async {
        await propertyCheck(count: 2000, input: Gen.uint32(in: 0...UInt32.max)) { value in
            var address = in_addr(s_addr: value.bigEndian)
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            #expect(inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil)
            let expected = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            #expect(SpliceAddress.dotted(address) == expected)
        }
        for (value, text) in [(UInt32(0), "0.0.0.0"), (0x7F00_0001, "127.0.0.1"), (0xFFFF_FFFF, "255.255.255.255"),
                              (0x0A64_0A09, "10.100.10.9")] {
            #expect(SpliceAddress.dotted(in_addr(s_addr: value.bigEndian)) == text)
        }
    }

    @Test("the text of an address is the text it was made from, IPv4 and IPv6")
    func roundTrip() throws {
        for ip in ["192.168.1.20", "127.0.0.1", "::1", "2001:db8::8:800:200c:417a"] {
            #expect(try #require(SpliceAddress(ip: ip, port: 80)).ipString == ip)
        }
    }
}
#endif
