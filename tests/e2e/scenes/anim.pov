// A small POV-Ray animation for the render tests: a ball that moves with the frame number.
#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 2, -5> look_at <0, 0, 0> }
light_source { <5, 10, -10> color rgb 1 }
sphere { <-1.5 + frame_number * 0.5, 0, 0>, 0.8 pigment { color rgb <1, 0.3, 0.2> } }
plane { y, -1 pigment { checker color rgb 1 color rgb 0.2 } }
