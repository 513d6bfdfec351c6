// Charts (SVG → PNG) for export, and input | label | prediction panels for predict.
export { formatTick, lineChartSvg, niceTicks, SERIES_COLOURS, svgToPng, writeLineChart, type ChartSeries, type LineChart } from './chart.js';
export {
  coloursFor, PALETTE, LEGEND_HEIGHT, labelPlane, overlay, PANEL_GAP, panelTileSize, renderPanel,
  sliceWithMostForeground, type ClassColour, type PanelInput,
} from './panel.js';
