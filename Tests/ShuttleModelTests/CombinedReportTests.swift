import PropertyBased
import Testing

@testable import ShuttleModel

/// `requestServed` and `connectionEnded`, the drivers' one-call ends, against
/// the two events each stands for.
@Suite("Registry: an end with its last bytes in one call")
struct CombinedReportTests {
    static let config = Config(
        fall: 1, rise: 1,
        services: [
            ServiceConfig(
                name: "web", address: ":8000", virtualHosts: ["web.test"],
                backends: [checked("a", "10.0.0.1"), checked("b", "10.0.0.2")]),
            ServiceConfig(name: "db", address: ":8001", backends: [checked("primary", "10.0.1.1")]),
        ])

    /// Both registries take the same steps, but for the ends: `byEvents` gets
    /// the two events, `byCalls` the one call.
    struct Pair {
        var byEvents = Harness(seed: 3)
        var byCalls = Harness(seed: 3)
        var next: UInt64 = 1

        init() {
            byEvents.apply(CombinedReportTests.config)
            byCalls.apply(CombinedReportTests.config)
        }

        mutating func both(_ event: Event) {
            let a = byEvents.send(event)
            let b = byCalls.send(event)
            #expect(a == b, "\(event)")
        }

        mutating func open(request: Bool) -> ConnectionID {
            let id = ConnectionID(next)
            next += 1
            if request {
                both(.requestReceived(id, HTTPRequest(host: "web.test", uri: "/")))
            } else if let listener = byEvents.listener("db") {
                both(.clientConnected(id, listener: listener, key: .none))
            }
            return id
        }

        func expectSame(_ step: String) {
            for service in ["web", "db"] {
                #expect(byEvents.registry.stats(service: service) == byCalls.registry.stats(service: service), "\(step)")
                #expect(
                    byEvents.registry.ownCounters(service: service) == byCalls.registry.ownCounters(service: service),
                    "\(step)")
            }
            #expect(byEvents.registry.openConnections == byCalls.registry.openConnections, "\(step)")
        }
    }

    @Test("served and ended in one call count as the bytes and the end do, whatever the connection's state")
    func oneCallIsTheTwoEvents() async {
        let steps = Gen.int(in: 0...7).array(of: 1...40)
        await propertyCheck(count: 200, input: steps, Gen.int(in: 0...9_999)) { steps, salt in
            var pair = Pair()
            var open: [ConnectionID] = []
            for (n, step) in steps.enumerated() {
                let sent = (salt + n * 37) % 500
                let received = (salt * 3 + n * 11) % 700
                let pick = open.isEmpty ? nil : open[(salt + n) % open.count]
                switch step {
                case 0, 1:
                    open.append(pair.open(request: step == 1))
                case 2:
                    if let pick { pair.both(.backendConnected(pick)) }
                case 3:
                    guard let pick else { continue }
                    let outcome: RequestOutcome = n % 3 == 0 ? .failed(status: 502, reason: "x") : .responded(status: 200)
                    pair.byEvents.send(.bytesTransferred(pick, sent: sent, received: received))
                    pair.byEvents.send(.requestFinished(pick, outcome))
                    pair.byCalls.registry.requestServed(pick, sent: sent, received: received, outcome)
                case 4:
                    guard let pick else { continue }
                    pair.byEvents.send(.bytesTransferred(pick, sent: sent, received: received))
                    pair.byEvents.send(.connectionClosed(pick))
                    pair.byCalls.registry.connectionEnded(pick, sent: sent, received: received)
                    open.removeAll { $0 == pick }
                case 5:
                    if let pick { pair.both(.bytesTransferred(pick, sent: sent, received: received)) }
                case 6:
                    // Backend a replaced: its connections count on the service's own.
                    var changed = Self.config
                    changed.services[0].backends[0].address = "10.0.0.\(10 + n):80"
                    pair.byEvents.apply(changed)
                    pair.byCalls.apply(changed)
                default:
                    // An id nobody placed.
                    pair.byEvents.send(.bytesTransferred(ConnectionID(999_999), sent: sent, received: received))
                    pair.byEvents.send(.requestFinished(ConnectionID(999_999), .responded(status: 200)))
                    pair.byCalls.registry.requestServed(ConnectionID(999_999), sent: sent, received: received, .clientGone)
                }
                pair.expectSame("step \(n): \(step)")
            }
        }
    }
}
