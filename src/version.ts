// The program version, recorded in every report and stress result.
export const VERSION = '0.1.0';
