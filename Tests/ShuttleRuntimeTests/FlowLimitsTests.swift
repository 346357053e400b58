@testable import ShuttleRuntime
import Testing

@Suite("UDP flow limits: how many flows, which one goes, how often the drop is said")
struct FlowLimitsTests {
    @Test("the flow limit is between 64 and 65,536")
    func limitBounds() {
        #expect(FlowLimits.maximumFlows >= 64)
        #expect(FlowLimits.maximumFlows <= FlowLimits.ceiling)
    }

    @Test("with few flows, the least recently active one goes", arguments: 1...FlowLimits.sample)
    func exactWhenFew(count: Int) {
        let flows = Dictionary(uniqueKeysWithValues: (0..<count).map { ($0, UInt64(100 + ($0 * 7919) % 101)) })
        let oldest = flows.min { $0.value < $1.value }!.key
        #expect(FlowLimits.victim(in: flows, lastActive: { $0 }) == oldest)
    }

    @Test("with many flows, one of them goes, older than most it was compared with")
    func sampledWhenMany() {
        let flows = Dictionary(uniqueKeysWithValues: (0..<10_000).map { ($0, UInt64($0)) })
        let victim = FlowLimits.victim(in: flows, lastActive: { $0 })
        #expect(victim != nil)
        let compared = flows.prefix(FlowLimits.sample).map(\.value)
        #expect(victim.map { UInt64($0) } == compared.min())
        #expect(FlowLimits.victim(in: [Int: UInt64](), lastActive: { $0 }) == nil)
    }

    @Test("a warning is said at most once per interval, with how many were held back")
    func warningLimiter() {
        var limiter = WarningLimiter(intervalNanoseconds: 1_000)
        #expect(limiter.shouldSay(now: 5_000) == (true, 0))
        #expect(limiter.shouldSay(now: 5_100) == (false, 0))
        #expect(limiter.shouldSay(now: 5_999) == (false, 0))
        #expect(limiter.shouldSay(now: 6_000) == (true, 2))
        #expect(limiter.shouldSay(now: 6_500) == (false, 0))
        #expect(limiter.shouldSay(now: 9_000) == (true, 1))
        #expect(limiter.shouldSay(now: 20_000) == (true, 0))
    }
}
