// POV-Ray's clock for the render tests: no #version and no assumed_gamma, so POV-Ray warns about both
// (warnings that must not fail a task); the ball moves with the clock and prints it.
#debug concat("CLOCK=", str(clock, 0, 6), " FRAME=", str(frame_number, 0, 0), "\n")
camera { location <0, 2, -5> look_at <0, 0, 0> }
light_source { <5, 10, -10> color rgb 1 }
sphere { <-1.5 + clock * 3, 0, 0>, 0.8 pigment { color rgb <1, 0.3, 0.2> } }
