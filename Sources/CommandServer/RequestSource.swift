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

/// Text from outside, made safe to keep: control characters dropped and the UTF-8 length
/// capped on a character boundary. A cap in `Character`s would not do: one character may
/// carry thousands of combining marks.
public enum StoredText {
    public static func capped(_ text: String, bytes: Int) -> String {
        var result = String.UnicodeScalarView()
        var used = 0
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format { continue }
            let size = String(scalar).utf8.count
            if used + size > bytes { break }
            used += size
            result.append(scalar)
        }
        return String(result)
    }
}
