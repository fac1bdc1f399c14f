// Test preload: keeps test runs quiet and hermetic.
process.env.TZ = "UTC";
