// The API's wire types (roles, the telemetry frame) are part of the server's vocabulary.
@_exported import RobotAPI
