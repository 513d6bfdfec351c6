// Loads the compiled addon; throws (and flow falls back to wasm's own convolutions) when it was not built.
module.exports = require('./build/Release/flow_native_conv.node');
