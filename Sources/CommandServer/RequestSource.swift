import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The request context of every route: Hummingbird's WebSocket context plus the peer's
/// address, which the log-in throttle and the refusal counts are kept by.
public struct RobotRequestContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
    }

    /// The peer's IP address as text ("unknown" if the channel has none).
    public var sourceAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
