import NIOHTTP1
import Testing

@testable import ShuttleRuntime

@Suite("HTTP virtual hosts: which requests ask to switch protocols")
struct UpgradeRequestTests {
    func head(_ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders(headers))
    }

    @Test("an upgrade needs an Upgrade header and `upgrade` among the Connection tokens, in any case")
    func upgradeNeedsBoth() {
        #expect(HeaderRules.isUpgrade(head([("Connection", "Upgrade"), ("Upgrade", "websocket")])))
        #expect(HeaderRules.isUpgrade(head([("connection", "keep-alive, UPGRADE"), ("upgrade", "h2c")])))
        #expect(HeaderRules.isUpgrade(head([("Connection", "keep-alive"), ("Connection", "upgrade"), ("Upgrade", "x")])))
        #expect(!HeaderRules.isUpgrade(head([("Upgrade", "websocket")])))
        #expect(!HeaderRules.isUpgrade(head([("Connection", "upgrade")])))
        #expect(!HeaderRules.isUpgrade(head([("Connection", "close"), ("Upgrade", "websocket")])))
        #expect(!HeaderRules.isUpgrade(head([("Connection", "close")])))
        #expect(!HeaderRules.isUpgrade(head([])))
    }
}
