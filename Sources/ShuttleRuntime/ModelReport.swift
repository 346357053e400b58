import ShuttleModel

/// What a data path tells the model when its batch of work ends (a relay
/// loop's batch of events, `SpliceLoop.report`; a NIO loop's turn,
/// `HTTPFrontend.LoopState`): an event whose actions it does not use, or the
/// end of a request or a connection with its last bytes, which the model
/// takes in one call and the recording keeps as the two events it stands for.
enum ModelReport {
    case event(Event)
    /// `.bytesTransferred`, then `.requestFinished`.
    case requestServed(ConnectionID, sent: Int, received: Int, RequestOutcome)
    /// `.bytesTransferred`, then `.connectionClosed`.
    case connectionEnded(ConnectionID, sent: Int, received: Int)
}

extension Driver {
    /// Feeds a batch of reports to the model under one taking of its lock.
    func report(_ reports: [ModelReport]) {
        registry.withLockedValue { registry in
            for report in reports {
                switch report {
                case .event(let event):
                    let actions = registry.handle(event)
                    recorder?(event, actions)
                case .requestServed(let id, let sent, let received, let outcome):
                    registry.requestServed(id, sent: sent, received: received, outcome)
                    record(id, sent: sent, received: received, then: .requestFinished(id, outcome))
                case .connectionEnded(let id, let sent, let received):
                    registry.connectionEnded(id, sent: sent, received: received)
                    record(id, sent: sent, received: received, then: .connectionClosed(id))
                }
            }
        }
    }

    /// Records an end as its events (neither has actions): the bytes, if
    /// any moved, then the end.
    private func record(_ id: ConnectionID, sent: Int, received: Int, then end: Event) {
        guard let recorder else { return }
        if sent > 0 || received > 0 { recorder(.bytesTransferred(id, sent: sent, received: received), []) }
        recorder(end, [])
    }
}
